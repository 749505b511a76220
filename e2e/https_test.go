package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/pebble"
)

// tlsClient connects every name to addr (as if DNS resolved it there),
// trusting only roots, and never follows redirects.
func tlsClient(roots *x509.CertPool, addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// `tls: auto` gets a certificate from a real ACME server (Pebble) with no
// other step: a client trusting only Pebble's root gets a 200 over HTTPS,
// plain HTTP redirects with 308 keeping path and query, and `moorage certs`
// shows it; a name the CA refuses shows as failed, with the CA's reason
// and the next attempt, and does not affect the other.
func TestHTTPSAutoWithPebble(t *testing.T) {
	parallel(t)
	httpAddr, httpsAddr := freePort(t), freePort(t)
	const refused = "refused.moorage.test"
	peb := pebble.Start(t, pebble.Options{HTTPPort: port(httpAddr), TLSPort: port(httpsAddr), Blocked: []string{refused}})
	s := &server{t: t, dataDir: t.TempDir(), http: httpAddr, https: httpsAddr,
		args: []string{"--acme-ca", peb.Dir, "--acme-ca-root", peb.CARoot, "--acme-email", "ops@moorage.test"}}
	s.start()
	t.Cleanup(s.stopAll)
	app := helloApp(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}",
		"    health: {path: /healthz, interval: 1s}\n    http: {hosts: [app.moorage.test, "+refused+"], tls: auto, hsts: true}")...)
	s.deploy(app, 0)

	c := tlsClient(peb.Roots, httpsAddr)
	var resp *http.Response
	waitFor(t, 90*time.Second, "an ACME certificate for app.moorage.test", func() error {
		r, err := c.Get("https://app.moorage.test/")
		if err != nil {
			return err
		}
		resp = r
		return nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "release=v1") {
		t.Fatalf("https: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("no HSTS header with hsts: true")
	}
	if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(strings.ToLower(issuer), "pebble") {
		t.Errorf("certificate issued by %q", issuer)
	}
	// Plain HTTP: 308 to HTTPS, path and query kept.
	hc := tlsClient(nil, httpAddr)
	r, err := hc.Get("http://app.moorage.test/some/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if want := fmt.Sprintf("https://app.moorage.test:%d/some/path?q=1", port(httpsAddr)); r.StatusCode != 308 || r.Header.Get("Location") != want {
		t.Fatalf("http → %d %q, want 308 %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	var out string
	waitFor(t, 60*time.Second, "moorage certs to show the refused name", func() error {
		out = s.mustRun("certs")
		if !strings.Contains(out, refused) || !strings.Contains(out, "failed") {
			return fmt.Errorf("moorage certs:\n%s", out)
		}
		return nil
	})
	t.Logf("moorage certs:\n%s", out)
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 {
			lines[f[2]] = l
		}
	}
	if l := lines["app.moorage.test"]; !strings.Contains(l, "valid") || !strings.HasSuffix(strings.TrimSpace(l), "-") {
		t.Errorf("moorage certs, the served name (valid, no last error):\n%s", out)
	}
	// LAST ERROR: the CA's reason, and when it is tried again.
	if l := lines[refused]; !strings.Contains(l, "rejectedIdentifier") || !strings.Contains(l, "(retry in ") {
		t.Errorf("moorage certs, the refused name:\n%s", out)
	}
	var list []struct {
		Names       []string  `json:"names"`
		Status      string    `json:"status"`
		LastError   string    `json:"last_error"`
		NextAttempt time.Time `json:"next_attempt"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("certs", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range list {
		if len(in.Names) == 1 && in.Names[0] == refused {
			found = in.Status == "failed" && strings.Contains(in.LastError, "rejectedIdentifier") && !in.NextAttempt.IsZero()
		}
	}
	if !found {
		t.Errorf("moorage certs --json: %+v", list)
	}
	// A redeploy keeps serving the same certificate: none is issued again.
	serial := resp.TLS.PeerCertificates[0].SerialNumber
	s.deploy(app, 0)
	r, err = c.Get("https://app.moorage.test/")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.TLS.PeerCertificates[0].SerialNumber.Cmp(serial) != 0 {
		t.Errorf("a deploy changed the certificate")
	}
}

// `tls: internal` serves a server reached by IP with moorage's own CA: a
// client trusting only `moorage server ca` connects by IP; canonical hosts
// redirect.
func TestHTTPSInternalByIP(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}",
		"    health: {path: /healthz, interval: 1s}\n    http: {hosts: [127.0.0.1, app.internal, www.app.internal], tls: internal, canonical: app.internal}")...)
	s.deploy(app, 0)
	rootPEM := s.mustRun("server", "ca")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(rootPEM)) {
		t.Fatalf("moorage server ca printed no PEM:\n%s", rootPEM)
	}
	c := tlsClient(roots, s.https)
	var body string
	waitFor(t, 30*time.Second, "HTTPS by IP", func() error {
		r, err := c.Get("https://127.0.0.1/")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		body = string(b)
		if r.StatusCode != 308 && r.StatusCode != 200 {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	})
	// The canonical host is app.internal: the IP and www redirect to it
	// (the client sent no port in Host: it dialed the listener directly).
	r, err := c.Get("https://www.app.internal/x?y=2")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if want := "https://app.internal/x?y=2"; r.StatusCode != 308 || r.Header.Get("Location") != want {
		t.Fatalf("www → %d %q, want 308 %q (body %q)", r.StatusCode, r.Header.Get("Location"), want, body)
	}
	r, err = c.Get("https://app.internal/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(b), "release=v1") {
		t.Fatalf("canonical host: %d %q", r.StatusCode, b)
	}
}

// A server with HTTPS off refuses a deploy whose route has tls:, saying
// how to turn HTTPS on, and changes nothing; `moorage certs` says HTTPS is
// off rather than that no route has TLS.
func TestHTTPSOffRefusesTLS(t *testing.T) {
	parallel(t)
	s := &server{t: t, dataDir: t.TempDir(), http: freePort(t), https: "off"}
	s.start()
	t.Cleanup(s.stopAll)
	app := helloApp(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}",
		"    health: {path: /healthz, interval: 1s}\n    http: {hosts: [app.moorage.test], tls: auto}")...)
	out := s.deploy(app, 1)
	if !strings.Contains(out, "HTTPS off") || !strings.Contains(out, "--https :443") || !strings.Contains(out, `service "web" has tls: auto`) {
		t.Fatalf("deploy with tls: on a server with HTTPS off:\n%s", out)
	}
	if apps := s.mustRun("apps"); strings.Contains(apps, "hello") {
		t.Fatalf("a refused deploy left an app:\n%s", apps)
	}
	if out := s.mustRun("certs"); !strings.Contains(out, "HTTPS is off on this server") {
		t.Fatalf("moorage certs with HTTPS off:\n%s", out)
	}
	if _, errOut, code := s.run("certs", "renew", "app.moorage.test"); code == 0 || !strings.Contains(errOut, "started with --https off") {
		t.Fatalf("moorage certs renew with HTTPS off: exit %d\n%s", code, errOut)
	}
}

// `moorage up` is a dev run: HTTPS is off unless asked for, so a route
// with tls: auto is served over plain HTTP, with a warning that says so and
// how to get HTTPS, instead of redirecting to a port nobody listens on.
func TestUpServesTLSRoutesPlain(t *testing.T) {
	parallel(t)
	app := helloApp(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}",
		"    health: {path: /healthz, interval: 1s}\n    http: {hosts: [app.moorage.test], tls: auto, hsts: true}")...)
	addr := freePort(t)
	_, out, _ := startUp(t, app, addr)
	if !strings.Contains(out.String(), "warning: service web has tls: auto, but moorage up has HTTPS off: it is served over plain HTTP") {
		t.Errorf("no warning:\n%s", out.String())
	}
	hc := tlsClient(nil, addr)
	var resp *http.Response
	waitFor(t, 60*time.Second, "plain HTTP", func() error {
		r, err := hc.Get("http://app.moorage.test/?y=1")
		if err != nil {
			return err
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || !strings.Contains(string(body), "release=v1") {
			return fmt.Errorf("%d %q %q", r.StatusCode, r.Header.Get("Location"), body)
		}
		resp = r
		return nil
	})
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over plain HTTP")
	}
}
