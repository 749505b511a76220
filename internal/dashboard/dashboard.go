// Package dashboard is moorage's web dashboard: server-rendered pages of
// the apps, their deploys, logs and the server, and a few actions (roll
// back, maintenance, scale, restart an accessory, back up, prune). It
// reads and acts only through the control API (internal/client), as the
// CLI does; it never reaches into the engine. Users log in with a password
// (bcrypt, checked by the API); sessions live in memory.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a dashboard.
type Options struct {
	// API is the control API the dashboard reads and acts through.
	API    *client.Client
	Logger *slog.Logger
}

// Dashboard serves the web dashboard under /dashboard/.
type Dashboard struct {
	api    *client.Client
	log    *slog.Logger
	prefix string
	pages  map[string]*template.Template
	ss     sessions
	lim    limiter
	checks chan struct{} // a slot per password check (LoginChecks)
	// closed ends the event streams (Close).
	closed context.Context
	close  context.CancelFunc
	// checkWait is how long a login waits for a slot (LoginQueueWait).
	checkWait time.Duration

	trafficMu sync.Mutex
	traffic   trafficSample // the previous sample, for rates
	prevTraf  trafficSample
}

type trafficSample struct {
	at     time.Time
	counts map[string]api.RequestCount
}

// Prefix is the path the dashboard is served under.
const Prefix = client.DashboardPrefix

// New returns a dashboard.
func New(o Options) (*Dashboard, error) {
	d := &Dashboard{api: o.API, log: o.Logger, prefix: strings.TrimSuffix(Prefix, "/")}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.ss.m = map[[32]byte]*session{}
	d.lim.m = map[string]*window{}
	d.checks = make(chan struct{}, LoginChecks)
	d.checkWait = LoginQueueWait
	d.closed, d.close = context.WithCancel(context.Background())
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	d.pages = pages
	return d, nil
}

func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, err
	}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// Close ends the open event streams now, and any opened later at once
// (the browser reconnects, to the next server). The server calls it when
// it stops or hands over, before it waits for the requests in flight: a
// stream would otherwise hold its shutdown until the drain timeout.
func (d *Dashboard) Close() { d.close() }

// Handler returns the dashboard's routes, all under Prefix.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	p := d.prefix
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+p+"/login", d.loginPage)
	mux.HandleFunc("POST "+p+"/login", d.login)
	mux.HandleFunc("POST "+p+"/logout", d.auth(d.logout))
	mux.HandleFunc("GET "+p+"/{$}", d.auth(d.overview))
	mux.HandleFunc("GET "+p+"/events/overview", d.auth(d.overviewEvents))
	mux.HandleFunc("GET "+p+"/server", d.auth(d.server))
	mux.HandleFunc("GET "+p+"/apps/{app}", d.auth(d.app))
	mux.HandleFunc("GET "+p+"/apps/{app}/deploys/{id}", d.auth(d.deploy))
	mux.HandleFunc("GET "+p+"/apps/{app}/deploys/{id}/events", d.auth(d.deployEvents))
	mux.HandleFunc("GET "+p+"/apps/{app}/logs", d.auth(d.logs))
	mux.HandleFunc("GET "+p+"/apps/{app}/logs/events", d.auth(d.logEvents))
	mux.HandleFunc("GET "+p+"/apps/{app}/confirm/{action}", d.auth(d.confirm))
	mux.HandleFunc("POST "+p+"/apps/{app}/actions/{action}", d.auth(d.action))
	mux.HandleFunc(p+"/", d.auth(func(w http.ResponseWriter, r *http.Request, s *session) {
		d.fail(w, r, s, http.StatusNotFound, "No such page.")
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		mux.ServeHTTP(w, r)
	})
}

type authed func(http.ResponseWriter, *http.Request, *session)

// auth lets a request with a live session through; a page without one is
// redirected to the login, anything else gets a 401.
func (d *Dashboard) auth(h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s *session
		var token string
		if c, err := r.Cookie(sessionCookie); err == nil {
			token = c.Value
			s = d.ss.get(token)
		}
		if s != nil && !d.stillValid(r, s) {
			s = nil
		}
		if s == nil {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, d.prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		d.ss.mu.Lock()
		cp := *s // the handler's own copy: stillValid may change the role
		d.ss.mu.Unlock()
		if r.Header.Get("Accept") == "text/event-stream" {
			// A live stream ends with its session: logout, expiry, the
			// user removed or its password changed.
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			stop := context.AfterFunc(d.closed, cancel) // the server stops
			defer stop()
			go d.watchSession(ctx, cancel, r, token)
			r = r.WithContext(ctx)
		}
		h(w, r, &cp)
	}
}

// watchSession cancels a stream's context once its session has ended.
func (d *Dashboard) watchSession(ctx context.Context, cancel context.CancelFunc, r *http.Request, token string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := d.ss.alive(token)
			if s == nil || !d.stillValid(r, s) {
				cancel()
				return
			}
		}
	}
}

// RecheckEvery is how often a session's user is read again: a removed
// user's sessions, and those opened before a password change, end, and a
// changed role applies, within this time.
const RecheckEvery = 10 * time.Second

// stillValid re-reads the session's user now and then.
func (d *Dashboard) stillValid(r *http.Request, s *session) bool {
	d.ss.mu.Lock()
	due := time.Since(s.checked) > RecheckEvery
	d.ss.mu.Unlock()
	if !due {
		return true
	}
	us, err := d.api.DashboardUsers(r.Context())
	if err != nil {
		return true // the API is down: the pages will say so
	}
	for _, u := range us {
		if u.Name == s.user {
			if u.Credential != s.credential {
				break // the password changed: every session of the user ends
			}
			d.ss.mu.Lock()
			s.role, s.checked = u.Role, time.Now()
			d.ss.mu.Unlock()
			return true
		}
	}
	d.ss.endUser(s.user)
	return false
}

// as is the API client for a session's requests: operations are recorded
// as the dashboard user's.
func (d *Dashboard) as(r *http.Request, s *session) *client.Client {
	return d.api.As(fmt.Sprintf("%s (dashboard, %s)", s.user, originOf(r).addr))
}

func (d *Dashboard) audit(r *http.Request, user, action, target, outcome string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	e := api.AuditEntry{User: user, IP: originOf(r).addr, Action: action, Target: target, Outcome: outcome}
	if err := d.api.AddAudit(ctx, e); err != nil {
		d.log.Error("dashboard audit", "err", err, "user", user, "action", action)
	}
	d.log.Info("dashboard", "user", user, "ip", e.IP, "action", action, "target", target, "outcome", outcome)
}

// page is what every template gets.
type page struct {
	Title   string
	Prefix  string
	User    string
	Role    string
	CSRF    string
	Nav     string
	Done    string // a finished action's note
	Error   string
	Live    bool // the page has live parts (loads app.js)
	Data    any
	Operate bool // the user may act
}

func (d *Dashboard) newPage(s *session, title, nav string, data any) *page {
	p := &page{Title: title, Prefix: d.prefix, Nav: nav, Data: data}
	if s != nil {
		p.User, p.Role, p.CSRF, p.Operate = s.user, s.role, s.csrf, s.role == api.RoleOperator
	}
	return p
}

func (d *Dashboard) render(w http.ResponseWriter, code int, name string, p *page) {
	t := d.pages[name]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", p); err != nil {
		d.log.Error("dashboard template", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(b.String()))
}

func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	p := d.newPage(s, http.StatusText(code), "", nil)
	p.Error = msg
	d.render(w, code, "error", p)
}

// apiFail shows an API error: its message says what is wrong.
func (d *Dashboard) apiFail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := http.StatusBadGateway
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status >= 400 {
		code = ce.Status
	}
	d.fail(w, r, s, code, err.Error())
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && d.ss.get(c.Value) != nil {
		http.Redirect(w, r, d.prefix+"/", http.StatusSeeOther)
		return
	}
	d.showLogin(w, r, http.StatusOK, "")
}

func (d *Dashboard) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok := randomToken()
	d.setCookie(w, r, loginCookie, tok, 3600)
	p := d.newPage(nil, "Log in", "", map[string]string{"Next": safeNext(d.prefix, r.FormValue("next"))})
	p.CSRF, p.Error = tok, msg
	d.render(w, code, "login", p)
}

// safeNext keeps a redirect after login inside the dashboard.
func safeNext(prefix, next string) string {
	if !strings.HasPrefix(next, prefix+"/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return prefix + "/"
	}
	return next
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name, password := r.PostFormValue("user"), r.PostFormValue("password")
	if len(name) > maxUserLen || len(password) > maxPasswordLen {
		// No such user or password can exist: not worth a hash.
		d.showLogin(w, r, http.StatusBadRequest, fmt.Sprintf("User names are at most %d bytes long, passwords at most %d.", maxUserLen, maxPasswordLen))
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(c.Value, r.PostFormValue("csrf")) || !sameOrigin(r) {
		d.showLogin(w, r, http.StatusForbidden, "The login form expired: try again.")
		return
	}
	o := originOf(r)
	att, wait := d.lim.reserve(o.key)
	if att == nil {
		// Not audited: the failure that used up the client's attempts was,
		// with when it may try again.
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		d.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins from your address: try again in %d minutes.", int(wait.Minutes())+1))
		return
	}
	if !d.acquireCheck(r.Context()) {
		d.lim.release(att)
		w.Header().Set("Retry-After", "5")
		d.showLogin(w, r, http.StatusServiceUnavailable, "The server is busy checking other logins: try again in a few seconds.")
		return
	}
	u, err := d.api.DashboardLogin(r.Context(), name, password)
	<-d.checks
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status == http.StatusUnauthorized {
			d.failedLogin(r, name, d.lim.failed(att))
			d.showLogin(w, r, http.StatusUnauthorized, "Wrong user name or password.")
			return
		}
		d.lim.release(att)
		d.showLogin(w, r, http.StatusBadGateway, "The server could not check the password: "+err.Error())
		return
	}
	d.lim.release(att)
	tok, _ := d.ss.create(u.Name, u.Role, u.Credential)
	d.setCookie(w, r, loginCookie, "", -1)
	d.setCookie(w, r, sessionCookie, tok, int(MaxAge.Seconds()))
	d.audit(r, u.Name, "login", "dashboard", "ok")
	http.Redirect(w, r, safeNext(d.prefix, r.PostFormValue("next")), http.StatusSeeOther)
}

// failedLogin records the n-th failed login of a client in its window:
// in the audit only the first and the one that blocks the client (and at
// most AuditFailedLogins per window over all clients), in the server's log
// each (at most LoginAttempts per client and window).
func (d *Dashboard) failedLogin(r *http.Request, name string, n int) {
	const outcome = "refused: wrong user name or password"
	var note string
	switch n {
	case 1:
		note = fmt.Sprintf(" (this client's first failure in %s; the next ones are counted, not each recorded)", LoginWindow)
	case LoginAttempts:
		note = fmt.Sprintf(" (%d failures in %s: this client is refused until the window ends)", n, LoginWindow)
	default:
		d.log.Info("dashboard", "user", name, "ip", originOf(r).addr, "action", "login", "outcome", outcome, "failures", n)
		return
	}
	ok, last, until := d.lim.auditSlot()
	if !ok {
		d.log.Info("dashboard", "user", name, "ip", originOf(r).addr, "action", "login", "outcome", outcome+note, "audited", false)
		return
	}
	if last {
		note += fmt.Sprintf("; %d failed logins recorded in %s: no more are recorded until %s (see the server's log)", AuditFailedLogins, LoginWindow, until.UTC().Format(time.RFC3339))
	}
	d.audit(r, name, "login", "dashboard", outcome+note)
}

// acquireCheck takes a password check's slot, waiting up to checkWait.
func (d *Dashboard) acquireCheck(ctx context.Context) bool {
	select {
	case d.checks <- struct{}{}:
		return true
	default:
	}
	if d.checkWait <= 0 {
		return false
	}
	t := time.NewTimer(d.checkWait)
	defer t.Stop()
	select {
	case d.checks <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.checkCSRF(w, r, s, "logout", "dashboard") {
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.ss.remove(c.Value)
	}
	d.setCookie(w, r, sessionCookie, "", -1)
	d.audit(r, s.user, "logout", "dashboard", "ok")
	http.Redirect(w, r, d.prefix+"/login", http.StatusSeeOther)
}

// checkCSRF refuses (403) a form without the session's token.
func (d *Dashboard) checkCSRF(w http.ResponseWriter, r *http.Request, s *session, action, target string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameToken(s.csrf, r.PostFormValue("csrf")) || !sameOrigin(r) {
		d.audit(r, s.user, action, target, "refused: missing or wrong CSRF token")
		d.fail(w, r, s, http.StatusForbidden, "This form is stale or did not come from the dashboard (its CSRF token is missing or wrong). Reload the page and try again.")
		return false
	}
	return true
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
