package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (scripts/test-deps installs it).
const chromiumPath = "/usr/bin/chromium"

const (
	dashOperator   = "alice"
	dashOperatorPW = "alice-password-1"
	dashReader     = "bob"
	dashReaderPW   = "bob-password-22"
	dashSecret     = "sekrit-Zq7-value-never-shown"
)

// requireChromium fails (never skips) without a browser.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the dashboard tests need Debian's chromium at %s: run scripts/test-deps (apt-get install chromium)", chromiumPath)
	}
}

// startDashboard starts `moorage dashboard` (the CLI's forwarder) on a free
// loopback port and returns its base URL.
func (s *server) startDashboard(t *testing.T) string {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(binary, "dashboard", "--listen", addr)
	cmd.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("moorage dashboard: %v", err)
	}
	m := regexp.MustCompile(`http://\S+/dashboard/`).FindString(line)
	if m == "" {
		t.Fatalf("moorage dashboard printed no address: %q", line)
	}
	return strings.TrimSuffix(m, "/dashboard/")
}

// dashClient is an HTTP client of the dashboard that keeps its cookies
// itself (they are Secure; the forwarder is plain HTTP on loopback).
type dashClient struct {
	t       *testing.T
	base    string
	hc      *http.Client
	cookies map[string]string
}

func newDashClient(t *testing.T, base string) *dashClient {
	return &dashClient{t: t, base: base, cookies: map[string]string{},
		hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *dashClient) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(page string) string {
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// login logs in and returns the status of the login's answer.
func (c *dashClient) login(user, pw string) int {
	c.t.Helper()
	_, page := c.do("GET", "/dashboard/login", nil)
	resp, _ := c.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(page)}, "user": {user}, "password": {pw}})
	return resp.StatusCode
}

// sse reads an event stream for d and returns what came.
func (c *dashClient) sse(path string, d time.Duration) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	b, _ := io.ReadAll(resp.Body) // until the deadline or the stream's end
	return string(b)
}

// browser is a headless chromium.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	mu    sync.Mutex
	pages []string // every page's rendered HTML, for the secret check
}

func newBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, shots: shots}
}

type step = chromedp.Action[chromedp.Void]

func (b *browser) run(what string, actions ...step) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		b.t.Fatalf("browser: %s: %v\nat %s:\n%s", what, err, loc, tail(html, 3000))
	}
}

// value runs an action that returns a value.
func value[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// capture keeps the page's HTML and saves screenshots at desktop and phone
// widths.
func (b *browser) capture(name string) {
	b.t.Helper()
	html := value(b, "read "+name, chromedp.OuterHTML(chromedp.CSS("html")))
	b.mu.Lock()
	b.pages = append(b.pages, html)
	b.mu.Unlock()
	for _, v := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if v.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		b.run("viewport for "+name, chromedp.EmulateViewport(v.w, v.h, opts...))
		png := value(b, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(b.shots, name+"-"+v.suffix+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.run("desktop again", chromedp.EmulateViewport(1280, 900))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return value(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(timeout time.Duration, sel, want string) {
	b.t.Helper()
	waitFor(b.t, timeout, sel+" to show "+want, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			return err
		}
		if !strings.Contains(s, want) {
			return fmt.Errorf("shows %q", tail(s, 300))
		}
		return nil
	})
}

func (b *browser) location() string {
	return value(b, "location", chromedp.Location())
}

// TestDashboard drives the dashboard in headless chromium against a real
// server and a real deploy of examples/hello: log in, follow a deploy step
// by step, read a worker's log line, roll back with the button and see the
// old release serve, log out; and, over HTTP, the safety rules.
func TestDashboard(t *testing.T) {
	parallel(t)
	requireChromium(t)
	s := startServerArgs(t, "", []string{"--dashboard", "dash.localhost", "--dashboard-tls", "internal"})
	shots := os.Getenv("MOORAGE_DASHBOARD_SHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "moorage-dashboard-shots-"); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(shots, 0o755)
	t.Logf("dashboard screenshots: %s", shots)

	if _, e, code := s.runStdin(dashOperatorPW+"\n", "dashboard", "user", "add", dashOperator, "--role", "operator"); code != 0 {
		t.Fatalf("user add: %s", e)
	}
	if _, e, code := s.runStdin(dashReaderPW+"\n", "dashboard", "user", "add", dashReader, "--role", "readonly"); code != 0 {
		t.Fatalf("user add: %s", e)
	}
	if _, e, code := s.runStdin("short\n", "dashboard", "user", "add", "carol", "--role", "operator"); code == 0 || !strings.Contains(e, "10 to 72 bytes") {
		t.Fatalf("a short password was not refused: exit %d: %s", code, e)
	}

	port := strings.Split(freePort(t), ":")[1]
	app := helloApp(t, append(fastSpec, "volumes:", `accessories:
  cache:
    command: sh -c 'exec sleep 3600'
    port: `+port+`
    health: {command: "true", interval: 1s}
volumes:`)...)
	s.mustRun("config", "set", "-a", "hello", "--no-deploy", "--secret", "API_TOKEN="+dashSecret)
	s.deploy(app, 0)
	s.waitBody("/", "message=Hello")
	base := s.startDashboard(t)

	b := newBrowser(t, shots)
	// No session: the login page.
	b.run("open", chromedp.Navigate(base+"/dashboard/"))
	if loc := b.location(); !strings.Contains(loc, "/dashboard/login") {
		t.Fatalf("without a session the dashboard sent the browser to %s, want the login", loc)
	}
	b.capture("login")
	b.run("log in",
		chromedp.SendKeys(chromedp.CSS("#user"), dashOperator),
		chromedp.SendKeys(chromedp.CSS("#password"), dashOperatorPW),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#apps")))
	b.waitText(30*time.Second, "#apps", "running")
	b.capture("overview")

	// A second release, followed live from its first step.
	if err := os.WriteFile(filepath.Join(app, "message.txt"), []byte("Second release\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deployDone := make(chan string, 1)
	go func() {
		out, errOut, code := s.run("deploy", app)
		deployDone <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	var id string
	waitFor(t, 60*time.Second, "the second deploy to start", func() error {
		out, _, _ := s.run("deploys", "-a", "hello", "--json", "-n", "1")
		var ds []struct {
			ID     int64  `json:"id"`
			Kind   string `json:"kind"`
			Status string `json:"status"`
		}
		json.Unmarshal([]byte(out), &ds)
		if len(ds) == 1 && ds[0].Kind == "deploy" && ds[0].Status == "running" && ds[0].ID > 1 {
			id = fmt.Sprint(ds[0].ID)
			return nil
		}
		return fmt.Errorf("no running deploy: %s", out)
	})
	b.run("open the deploy", chromedp.Navigate(base+"/dashboard/apps/hello/deploys/"+id), chromedp.WaitVisible(chromedp.CSS("#steps")))
	counts := map[int]bool{}
	waitFor(t, 4*time.Minute, "the deploy page to show the deploy succeeded", func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#steps li.step").length`))
		if err != nil {
			return err
		}
		st, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#deploy-status")))
		if err != nil {
			return err
		}
		counts[n] = true
		if st != "succeeded" {
			return fmt.Errorf("status %q, %d steps", st, n)
		}
		return nil
	})
	if len(counts) < 3 {
		t.Errorf("the deploy page showed only these step counts while it ran: %v (want it to grow step by step without a reload)", counts)
	}
	b.capture("deploy")
	if out := <-deployDone; !strings.HasPrefix(out, "exit 0") {
		t.Fatalf("second deploy: %s", out)
	}
	s.waitBody("/", "message=Second release")

	// A worker's log line.
	b.run("open the worker's logs", chromedp.Navigate(base+"/dashboard/apps/hello/logs?service=worker"), chromedp.WaitVisible(chromedp.CSS("#log")))
	b.waitText(30*time.Second, "#log", "worker started")
	lines := value(b, "count log lines", chromedp.Evaluate[int](`document.querySelectorAll("#log .ll").length`))
	waitFor(t, 30*time.Second, "a new worker line to appear live", func() error {
		n := value(b, "count log lines", chromedp.Evaluate[int](`document.querySelectorAll("#log .ll").length`))
		if n <= lines {
			return fmt.Errorf("still %d lines", n)
		}
		return nil
	})
	b.capture("logs")

	// Roll back to v1 with the button.
	b.run("open the app", chromedp.Navigate(base+"/dashboard/apps/hello"), chromedp.WaitVisible(chromedp.CSS(`a[data-rollback="v1"]`)))
	b.capture("app")
	// v1's web stays warm after the second deploy (deploy.keep_warm): the
	// app page says so, and the rollback below serves from it at once.
	if txt := b.text("main"); !strings.Contains(txt, "warm until ") {
		t.Errorf("the app page does not show v1's warm web: %s", tail(txt, 2000))
	}
	b.run("roll back", chromedp.Click(chromedp.CSS(`a[data-rollback="v1"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if txt := b.text("main"); !strings.Contains(txt, "Roll hello back to v1") || !strings.Contains(txt, "traffic") {
		t.Fatalf("the confirmation does not say what happens: %s", txt)
	}
	b.capture("confirm")
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#steps")))
	b.waitText(2*time.Minute, "#deploy-status", "succeeded")
	s.waitBody("/", "message=Hello")
	b.run("server page", chromedp.Navigate(base+"/dashboard/server"), chromedp.WaitVisible(chromedp.CSS("#h-audit")))
	if txt := b.text("main"); !strings.Contains(txt, "rollback") || !strings.Contains(txt, dashOperator) {
		t.Errorf("the audit does not show alice's rollback: %s", tail(txt, 2000))
	}
	if txt := b.text("main"); !strings.Contains(txt, "process: answers") {
		t.Errorf("the server page does not say the process runtime answers: %s", tail(txt, 2000))
	}
	b.capture("server")

	// Log out: the session is gone.
	b.run("log out", chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.CSS("#password")))
	b.run("after logout", chromedp.Navigate(base+"/dashboard/apps/hello"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if loc := b.location(); !strings.Contains(loc, "/dashboard/login") {
		t.Fatalf("after logging out the app page answered at %s", loc)
	}

	t.Run("DashboardNoSession", func(t *testing.T) {
		c := newDashClient(t, base)
		for _, p := range []string{"/dashboard/", "/dashboard/apps/hello", "/dashboard/apps/hello/logs", "/dashboard/server", "/dashboard/apps/hello/deploys/1"} {
			resp, _ := c.do("GET", p, nil)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/dashboard/login") {
				t.Errorf("GET %s without a session: %s to %q, want 303 to the login", p, resp.Status, resp.Header.Get("Location"))
			}
		}
		resp, _ := c.do("POST", "/dashboard/apps/hello/actions/rollback", url.Values{"to": {"2"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("an action without a session: %s, want 401", resp.Status)
		}
		// The forwarder passes the dashboard only, never the control API.
		resp, _ = c.do("GET", "/v1/apps", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /v1/apps through `moorage dashboard`: %s, want 404", resp.Status)
		}
	})

	t.Run("DashboardCSRFAndRoles", func(t *testing.T) {
		op := newDashClient(t, base)
		if code := op.login(dashOperator, dashOperatorPW); code != http.StatusSeeOther {
			t.Fatalf("operator login: %d", code)
		}
		resp, body := op.do("POST", "/dashboard/apps/hello/actions/maintenance-on", url.Values{"message": {"x"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("an action without a CSRF token: %s, want 403", resp.Status)
		}
		resp, _ = op.do("POST", "/dashboard/apps/hello/actions/maintenance-on", url.Values{"message": {"x"}, "csrf": {"forged"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("an action with a wrong CSRF token: %s, want 403", resp.Status)
		}
		if code, body, _ := s.get("/"); code != 200 {
			t.Fatalf("a refused action changed the app: %d %s", code, body)
		}

		ro := newDashClient(t, base)
		if code := ro.login(dashReader, dashReaderPW); code != http.StatusSeeOther {
			t.Fatalf("readonly login: %d", code)
		}
		_, page := ro.do("GET", "/dashboard/apps/hello", nil)
		if strings.Contains(page, "data-rollback") {
			t.Errorf("the read-only user is offered a rollback button")
		}
		resp, _ = ro.do("GET", "/dashboard/apps/hello/confirm/rollback?to=2", nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("read-only confirm page: %s, want 403", resp.Status)
		}
		resp, _ = ro.do("POST", "/dashboard/apps/hello/actions/rollback", url.Values{"to": {"2"}, "csrf": {csrfOf(page)}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("read-only rollback: %s, want 403", resp.Status)
		}
		if _, body, _ := s.get("/"); !strings.Contains(body, "message=Hello") {
			t.Errorf("the read-only user's rollback changed what serves: %s", body)
		}
		out := s.mustRun("releases", "-a", "hello")
		_ = out
		_, srv := op.do("GET", "/dashboard/server", nil)
		if !strings.Contains(srv, "refused: read-only role") || !strings.Contains(srv, "refused: missing or wrong CSRF token") {
			t.Errorf("the audit does not record the refusals:\n%s", tail(srv, 3000))
		}

	})

	t.Run("DashboardActions", func(t *testing.T) {
		op := newDashClient(t, base)
		if code := op.login(dashOperator, dashOperatorPW); code != http.StatusSeeOther {
			t.Fatalf("login: %d", code)
		}
		act := func(action string, form url.Values) *http.Response {
			t.Helper()
			_, page := op.do("GET", "/dashboard/apps/hello/confirm/"+action+"?"+form.Encode(), nil)
			tok := csrfOf(page)
			if tok == "" {
				t.Fatalf("the %s confirmation has no form:\n%s", action, tail(page, 2000))
			}
			form.Set("csrf", tok)
			resp, body := op.do("POST", "/dashboard/apps/hello/actions/"+action, form)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s: %s\n%s", action, resp.Status, tail(body, 2000))
			}
			return resp
		}
		act("maintenance-on", url.Values{"message": {"Back soon, dashboard"}})
		if code, body, _ := s.get("/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Back soon, dashboard") {
			t.Errorf("maintenance on: the app answered %d %q", code, tail(body, 200))
		}
		act("maintenance-off", url.Values{})
		s.waitBody("/", "message=")

		resp := act("scale", url.Values{"service": {"worker"}, "replicas": {"2"}})
		loc := resp.Header.Get("Location")
		if !strings.Contains(loc, "/deploys/") {
			t.Fatalf("scale sent the browser to %q, want its deploy", loc)
		}
		waitFor(t, 2*time.Minute, "the scale to succeed", func() error {
			_, page := op.do("GET", loc, nil)
			if !strings.Contains(page, `id="deploy-status">succeeded`) {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if _, page := op.do("GET", "/dashboard/apps/hello", nil); !strings.Contains(page, "worker.2") {
			t.Errorf("the app page shows no second worker after scaling")
		}

		act("restart", url.Values{"accessory": {"cache"}})
		act("backup", url.Values{})
		if _, page := op.do("GET", "/dashboard/apps/hello", nil); !strings.Contains(page, "data <small>(volume)</small>") {
			t.Errorf("the app page shows no backup of the data volume:\n%s", tail(page, 3000))
		}
		act("prune", url.Values{})

		// The audit: a streamed action's outcome is written when it ends.
		waitFor(t, 30*time.Second, "the audit to record every action", func() error {
			_, srv := op.do("GET", "/dashboard/server", nil)
			for _, a := range []string{"maintenance-on", "maintenance-off", "scale", "restart", "backup", "prune"} {
				if !regexp.MustCompile(`<td>alice</td><td>[^<]*</td><td>` + a + `</td><td>[^<]*</td><td>ok</td>`).MatchString(srv) {
					return fmt.Errorf("no successful %s by alice", a)
				}
			}
			return nil
		})
	})

	t.Run("DashboardNoSecrets", func(t *testing.T) {
		c := newDashClient(t, base)
		if code := c.login(dashOperator, dashOperatorPW); code != http.StatusSeeOther {
			t.Fatalf("login: %d", code)
		}
		var seen strings.Builder
		for _, p := range []string{"/dashboard/", "/dashboard/apps/hello", "/dashboard/apps/hello/logs", "/dashboard/apps/hello/logs?service=web",
			"/dashboard/apps/hello/deploys/1", "/dashboard/apps/hello/deploys/" + id, "/dashboard/server", "/dashboard/apps/hello/confirm/prune",
			"/dashboard/apps/hello/confirm/rollback?to=2", "/dashboard/apps/hello/confirm/backup"} {
			resp, body := c.do("GET", p, nil)
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %s", p, resp.Status)
			}
			seen.WriteString(body)
		}
		seen.WriteString(c.sse("/dashboard/events/overview", 3*time.Second))
		seen.WriteString(c.sse("/dashboard/apps/hello/deploys/"+id+"/events", 5*time.Second))
		seen.WriteString(c.sse("/dashboard/apps/hello/logs/events", 3*time.Second))
		if !strings.Contains(seen.String(), "API_TOKEN") {
			t.Errorf("the app page does not list the secret's name")
		}
		for _, h := range b.pages {
			seen.WriteString(h)
		}
		if strings.Contains(seen.String(), dashSecret) {
			t.Errorf("a page or event stream shows the secret's value")
		}
		if strings.Contains(s.logs(), dashSecret) {
			t.Errorf("the server's log holds the secret's value")
		}
		if strings.Contains(seen.String(), dashOperatorPW) || strings.Contains(s.logs(), dashOperatorPW) {
			t.Errorf("a page or the server's log holds a password")
		}
	})

	t.Run("DashboardLoginLimit", func(t *testing.T) {
		// Logins are limited per address.
		lim := newDashClient(t, base)
		got := 0
		for range 11 {
			got = lim.login("mallory", "wrong-password-x")
		}
		if got != http.StatusTooManyRequests {
			t.Errorf("the 11th failed login answered %d, want 429", got)
		}
	})

	t.Run("DashboardHTTPSHost", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(s.https)
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "dash.localhost"},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, s.https)
			},
		}
		hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		var resp *http.Response
		waitFor(t, 30*time.Second, "the dashboard host's certificate", func() error {
			var err error
			resp, err = hc.Get("https://dash.localhost:" + port + "/dashboard/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/dashboard/login") {
			t.Errorf("HTTPS dashboard without a session: %s %q", resp.Status, resp.Header.Get("Location"))
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("no HSTS over HTTPS")
		}
		// Plain HTTP for the dashboard's host goes to HTTPS.
		req, _ := http.NewRequest("GET", "http://"+s.http+"/dashboard/", nil)
		req.Host = "dash.localhost"
		plain := &http.Client{CheckRedirect: hc.CheckRedirect}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://dash.localhost") {
			t.Errorf("plain HTTP to the dashboard host: %s %q", resp.Status, resp.Header.Get("Location"))
		}
		// The app's own routes are untouched.
		if code, body, _ := s.get("/"); code != 200 || !strings.Contains(body, "message=") {
			t.Errorf("the app no longer serves: %d %s", code, body)
		}
	})
}

// TestDashboardOverSSH: `moorage dashboard` on another machine reaches the
// dashboard through ssh to `moorage dial-stdio`, with no port opened on the
// server; users are made over the same route.
func TestDashboardOverSSH(t *testing.T) {
	parallel(t)
	d := startSSHD(t)
	s := startServer(t)
	r := d.cli("ssh://" + d.user + "@" + d.addr + socketOf(s.dataDir))
	if out, e, code := r.run(dashOperatorPW+"\n", "dashboard", "user", "add", dashOperator, "--role", "operator"); code != 0 {
		t.Fatalf("user add over ssh: exit %d\n%s%s", code, out, e)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := r.command(ctx, "dashboard", "--listen", addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "ssh://") {
		t.Fatalf("moorage dashboard over ssh printed %q (%v)\n%s", line, err, stderr.String())
	}
	c := newDashClient(t, "http://"+addr)
	if resp, _ := c.do("GET", "/dashboard/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("no session over ssh: %s, want a redirect to the login", resp.Status)
	}
	if code := c.login(dashOperator, dashOperatorPW); code != http.StatusSeeOther {
		t.Fatalf("login over ssh: %d", code)
	}
	// The audit shows the real peer (the ssh session's dial-stdio), not
	// the forwarder's loopback address.
	if resp, page := c.do("GET", "/dashboard/server", nil); resp.StatusCode != 200 || !strings.Contains(page, "(uid ") || !strings.Contains(page, " over ssh from 127.0.0.1") {
		t.Errorf("the server page over ssh: %s; the audit should show the login from the ssh peer (USER (uid N) over ssh from 127.0.0.1):\n%s", resp.Status, tail(page, 2000))
	}
	if ev := c.sse("/dashboard/events/overview", 3*time.Second); !strings.Contains(ev, "event: apps") {
		t.Errorf("the overview's event stream over ssh sent %q", ev)
	}
	if resp, _ := c.do("GET", "/v1/apps", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the control API through the forwarder: %s, want 404", resp.Status)
	}
	// DNS rebinding: a page of another site whose name resolves to the
	// loopback address sends its own Host; the forwarder refuses it.
	{
		_, port, _ := net.SplitHostPort(addr)
		req, _ := http.NewRequest("GET", "http://"+addr+"/dashboard/login", nil)
		req.Host = "rebind.example:" + port
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("the forwarder with Host %s: %s, want 421", req.Host, resp.Status)
		}
	}
	// A password change ends the user's sessions, and a live event stream
	// with them (within the dashboard's recheck time).
	streamed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/dashboard/events/overview", nil)
		req.Header.Set("Accept", "text/event-stream")
		for k, v := range c.cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			streamed <- err
			return
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		if ctx.Err() != nil {
			err = errors.New("the stream was still open after 60 s")
		}
		streamed <- err
	}()
	const newPW = "a-different-passphrase-9"
	if out, e, code := r.run(newPW+"\n", "dashboard", "user", "add", dashOperator, "--role", "operator"); code != 0 {
		t.Fatalf("changing the password: exit %d\n%s%s", code, out, e)
	}
	waitFor(t, 30*time.Second, "the session opened with the old password to end", func() error {
		if resp, _ := c.do("GET", "/dashboard/", nil); resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("still %s", resp.Status)
		}
		return nil
	})
	if err := <-streamed; err != nil {
		t.Errorf("the event stream of the ended session: %v", err)
	}
	if code := c.login(dashOperator, dashOperatorPW); code == http.StatusSeeOther {
		t.Errorf("the old password still logs in")
	}
	if code := c.login(dashOperator, newPW); code != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", code)
	}
	// A removed user's session ends (within the dashboard's recheck time).
	r.mustRun("dashboard", "user", "remove", dashOperator)
	waitFor(t, 30*time.Second, "the removed user's session to end", func() error {
		if resp, _ := c.do("GET", "/dashboard/", nil); resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("still %s", resp.Status)
		}
		return nil
	})
}

// TestDashboardStreamEndsOnStop: an open event stream on the HTTPS
// dashboard does not hold the server's graceful stop until its drain
// timeout (30 s): the stream ends as the stop begins.
func TestDashboardStreamEndsOnStop(t *testing.T) {
	parallel(t)
	s := startServerArgs(t, "", []string{"--dashboard", "dash.localhost", "--dashboard-tls", "internal"})
	if _, e, code := s.runStdin(dashOperatorPW+"\n", "dashboard", "user", "add", dashOperator, "--role", "operator"); code != 0 {
		t.Fatalf("user add: exit %d: %s", code, e)
	}
	_, port, _ := net.SplitHostPort(s.https)
	c := newDashClient(t, "https://dash.localhost:"+port)
	c.hc.Transport = &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "dash.localhost"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.https)
		},
	}
	if code := c.login(dashOperator, dashOperatorPW); code != http.StatusSeeOther {
		t.Fatalf("login over HTTPS: %d", code)
	}
	req, _ := http.NewRequest("GET", c.base+"/dashboard/events/overview", nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the overview's stream: %s", resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "event: apps") {
		t.Fatalf("the overview's stream sent %q (%v)", line, err)
	}
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, br)
		close(ended)
	}()

	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(25 * time.Second):
		t.Fatalf("the server did not stop within 25 s with a dashboard stream open (its drain timeout is 30 s):\n%s", tail(s.logs(), 3000))
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the server took %s to stop with a dashboard stream open", took)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Errorf("the stream did not end with the server")
	}
	t.Logf("stopped in %s with a stream open", time.Since(start).Round(time.Millisecond))
}
