package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
// shows it.
func TestHTTPSAutoWithPebble(t *testing.T) {
	t.Parallel()
	httpAddr, httpsAddr := freePort(t), freePort(t)
	peb := pebble.Start(t, pebble.Options{HTTPPort: port(httpAddr), TLSPort: port(httpsAddr)})
	s := &server{t: t, dataDir: t.TempDir(), http: httpAddr, https: httpsAddr,
		args: []string{"--acme-ca", peb.Dir, "--acme-ca-root", peb.CARoot, "--acme-email", "ops@moorage.test"}}
	s.start()
	t.Cleanup(s.stopAll)
	app := helloApp(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}",
		"    health: {path: /healthz, interval: 1s}\n    http: {hosts: [app.moorage.test], tls: auto, hsts: true}")...)
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
	out := s.mustRun("certs")
	if !strings.Contains(out, "app.moorage.test") || !strings.Contains(out, "valid") {
		t.Fatalf("moorage certs:\n%s", out)
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
	t.Parallel()
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
