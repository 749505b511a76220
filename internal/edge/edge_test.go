package edge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/spec"
)

// server is the edge in front of a real proxy, on plain HTTP and HTTPS
// listeners on loopback, with moorage's internal CA for the certificates.
type server struct {
	edge      *edge.Edge
	proxy     *proxy.Proxy
	certs     *certs.Manager
	httpAddr  string
	httpsAddr string
	httpsPort int
	client    *http.Client
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{proxy: proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})}
	t.Cleanup(func() { s.proxy.Close() })
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.httpAddr, s.httpsAddr = httpLn.Addr().String(), httpsLn.Addr().String()
	s.httpsPort = httpsLn.Addr().(*net.TCPAddr).Port
	if s.certs, err = certs.New(certs.Options{DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.certs.Close() })
	s.edge = edge.New(s.proxy, edge.Options{
		HTTPSPort: s.httpsPort,
		Challenge: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != edge.ChallengePrefix+"known" {
				return false
			}
			io.WriteString(w, "key authorization")
			return true
		},
	})
	// As the server does: plain HTTP and HTTPS through the proxy's own
	// front (HTTP/2 and the unusual through net/http behind it); the edge
	// in front of the proxy on both.
	plain := s.proxy.NewServer(proxy.ServerOptions{Handler: s.edge})
	secure := s.proxy.NewServer(proxy.ServerOptions{Handler: s.edge})
	go plain.Serve(httpLn)
	go secure.ServeTLS(httpsLn, s.certs.TLSConfig())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		plain.Shutdown(ctx)
		secure.Shutdown(ctx)
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.certs.RootPEM())
	d := &net.Dialer{Timeout: 30 * time.Second}
	s.client = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if strings.HasSuffix(addr, ":443") {
					return d.DialContext(ctx, network, s.httpsAddr)
				}
				return d.DialContext(ctx, network, s.httpAddr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// add routes app's hosts to a backend that echoes what it saw.
func (s *server) add(t *testing.T, app string, site edge.Site, tlsMode string) {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, app+" "+r.Header.Get("X-Forwarded-Proto")+" "+r.Host+" "+r.Method+" "+r.URL.RequestURI())
	}))
	t.Cleanup(b.Close)
	if tlsMode != spec.TLSOff {
		if err := s.certs.SetApp(app, []certs.Site{{Hosts: site.Hosts, Mode: tlsMode}}); err != nil {
			t.Fatal(err)
		}
	}
	rt := proxy.RouteTargets{
		Route:   proxy.Route{App: app, Service: "web", Hosts: site.Hosts},
		Targets: []proxy.Target{{ID: app + "-1", Addr: b.Listener.Addr().String()}},
	}
	if err := s.proxy.SetApp(app, []proxy.RouteTargets{rt}); err != nil {
		t.Fatal(err)
	}
	if err := s.edge.Check(app, []edge.Site{site}); err != nil {
		t.Fatal(err)
	}
	if err := s.edge.SetApp(app, []edge.Site{site}); err != nil {
		t.Fatal(err)
	}
}

// TestRedirects: HTTP → HTTPS for TLS routes (308, path and query kept),
// canonical hosts both ways (www → apex, apex → www) in one hop, HSTS on
// HTTPS responses, ACME challenge paths exempt, the rest passed through.
func TestRedirects(t *testing.T) {
	s := newServer(t)
	s.add(t, "apex", edge.Site{Hosts: []string{"example.test", "www.example.test"}, TLS: true, Canonical: "example.test", HSTS: true}, spec.TLSInternal)
	s.add(t, "www", edge.Site{Hosts: []string{"shop.test", "www.shop.test"}, TLS: true, Canonical: "www.shop.test"}, spec.TLSInternal)
	s.add(t, "third", edge.Site{Hosts: []string{"api.third.test"}, TLS: true}, spec.TLSInternal)
	s.add(t, "plain", edge.Site{Hosts: []string{"plain.test", "www.plain.test"}, Canonical: "plain.test"}, spec.TLSOff)
	port := strconv.Itoa(s.httpsPort)
	hsts := edge.DefaultHSTS

	for _, c := range []struct {
		method, url string
		code        int
		want        string // Location, or the body
		hsts        string
	}{
		// HTTP → HTTPS, path and query kept, canonical in the same hop.
		{"GET", "http://example.test/a/b?x=1&y=%2F", 308, "https://example.test:" + port + "/a/b?x=1&y=%2F", ""},
		{"GET", "http://www.example.test/a?b", 308, "https://example.test:" + port + "/a?b", ""},
		{"POST", "http://example.test/form", 308, "https://example.test:" + port + "/form", ""},
		{"GET", "http://EXAMPLE.test./caps", 308, "https://example.test:" + port + "/caps", ""},
		{"GET", "http://example.test/%E2%82%AC%20x", 308, "https://example.test:" + port + "/%E2%82%AC%20x", ""},
		// www → apex over HTTPS, with HSTS; the apex serves, with HSTS.
		{"GET", "https://www.example.test/p?q=1", 308, "https://example.test/p?q=1", hsts},
		{"GET", "https://example.test/p?q=1", 200, "apex https example.test GET /p?q=1", hsts},
		// apex → www; no HSTS on this route.
		{"GET", "http://shop.test/x", 308, "https://www.shop.test:" + port + "/x", ""},
		{"GET", "https://shop.test/x?y", 308, "https://www.shop.test/x?y", ""},
		{"GET", "https://www.shop.test/", 200, "www https www.shop.test GET /", ""},
		// A third-level domain needs no www: only HTTP → HTTPS.
		{"GET", "http://api.third.test/v1", 308, "https://api.third.test:" + port + "/v1", ""},
		{"GET", "https://api.third.test/v1", 200, "third https api.third.test GET /v1", ""},
		// Canonical without TLS: the scheme and port stay.
		{"GET", "http://www.plain.test:8080/p?q=1", 308, "http://plain.test:8080/p?q=1", ""},
		{"GET", "http://plain.test/", 200, "plain http plain.test GET /", ""},
		// ACME challenges are never redirected: answered, or left to the app.
		{"GET", "http://www.example.test/.well-known/acme-challenge/known", 200, "key authorization", ""},
		{"GET", "http://example.test/.well-known/acme-challenge/other", 200, "apex http example.test GET /.well-known/acme-challenge/other", ""},
		{"GET", "http://www.example.test/.well-known/acme-challenge/other", 200, "apex http www.example.test GET /.well-known/acme-challenge/other", ""},
		{"GET", "http://www.plain.test/.well-known/acme-challenge/other", 200, "plain http www.plain.test GET /.well-known/acme-challenge/other", ""},
		// Hosts nobody claims go to the proxy as they are.
		{"GET", "http://nobody.test/", 404, "", ""},
	} {
		var reqBody io.Reader // a GET without a body: the front's, over HTTP and HTTPS
		if c.method != "GET" {
			reqBody = strings.NewReader("body") // net/http's
		}
		req, _ := http.NewRequest(c.method, c.url, reqBody)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(body)
		if c.code == 308 {
			got = resp.Header.Get("Location")
		}
		if resp.StatusCode != c.code || (c.want != "" && got != c.want) {
			t.Errorf("%s %s = %d %q, want %d %q", c.method, c.url, resp.StatusCode, got, c.code, c.want)
		}
		if h := resp.Header.Get("Strict-Transport-Security"); h != c.hsts {
			t.Errorf("%s %s: HSTS %q, want %q", c.method, c.url, h, c.hsts)
		}
	}

	// HTTP/2 (what browsers speak over HTTPS) goes through the same way.
	h2 := *s.client
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	h2.Transport = tr
	for _, url := range []string{"https://www.example.test/h2", "https://example.test/h2"} {
		resp, err := h2.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") != hsts ||
			(resp.StatusCode != 308 && string(body) != "apex https example.test GET /h2") {
			t.Errorf("%s over %s: %d %q %q", url, resp.Proto, resp.StatusCode, body, resp.Header.Get("Location"))
		}
	}

	// Removing the app removes its policy.
	s.edge.RemoveApp("third")
	s.proxy.RemoveApp("third")
	resp, err := s.client.Get("http://api.third.test/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("after RemoveApp: %d", resp.StatusCode)
	}
}

// TestServeHTTP covers request hosts the clients above do not send.
func TestServeHTTP(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	e := edge.New(next, edge.Options{HTTPSPort: 8443})
	if err := e.SetApp("ip", []edge.Site{{TLS: true}}); err != nil { // the default route
		t.Fatal(err)
	}
	if err := e.SetApp("named", []edge.Site{{Hosts: []string{"plain.test"}}, {Hosts: []string{"*.wild.test"}, TLS: true}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ host, target string }{
		{"[::1]:8080", "https://[::1]:8443/p?q"},
		{"[::1]", "https://[::1]:8443/p?q"},
		{"10.1.2.3:80", "https://10.1.2.3:8443/p?q"},
		{"any.name.test", "https://any.name.test:8443/p?q"},
		{"a.wild.test", "https://a.wild.test:8443/p?q"},
		{"plain.test", ""}, // claimed by an app without TLS: not the default route's
		{"", ""},           // no Host: nothing to redirect to
	} {
		r := httptest.NewRequest("GET", "http://x/p?q", nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if c.target == "" {
			if w.Code != 299 {
				t.Errorf("Host %q: %d, want it passed through", c.host, w.Code)
			}
		} else if w.Code != 308 || w.Header().Get("Location") != c.target {
			t.Errorf("Host %q: %d %q, want 308 %q", c.host, w.Code, w.Header().Get("Location"), c.target)
		}
	}
}

// TestBadInput: clear errors, and nothing changes.
func TestBadInput(t *testing.T) {
	e := edge.New(http.NotFoundHandler(), edge.Options{})
	if err := e.SetApp("one", []edge.Site{{Hosts: []string{"a.test", "www.a.test"}, Canonical: "a.test", TLS: true}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		sites []edge.Site
		is    error
		want  string
	}{
		{"invalid host", []edge.Site{{Hosts: []string{"a b.test"}}}, edge.ErrInvalidSite, "not a valid host name"},
		{"canonical not a host", []edge.Site{{Hosts: []string{"b.test"}, Canonical: "c.test"}}, edge.ErrInvalidSite, "must be one of the hosts"},
		{"wildcard canonical", []edge.Site{{Hosts: []string{"*.b.test"}, Canonical: "*.b.test"}}, edge.ErrInvalidSite, "not a wildcard"},
		{"claimed host", []edge.Site{{Hosts: []string{"WWW.a.test"}}}, edge.ErrHostConflict, `host "www.a.test" is already served by app "one": remove it from the hosts: of "one" and deploy that app first, or use another host`},
		{"one host twice", []edge.Site{{Hosts: []string{"b.test"}, TLS: true}, {Hosts: []string{"b.test"}}}, edge.ErrHostConflict, "listed twice"},
	} {
		for what, err := range map[string]error{"Check": e.Check("two", c.sites), "SetApp": e.SetApp("two", c.sites)} {
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %s: %v, want %v with %q", c.name, what, err, c.is, c.want)
			}
		}
	}
	r := httptest.NewRequest("GET", "http://www.a.test/", nil)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	if w.Code != 308 || w.Header().Get("Location") != "https://a.test/" {
		t.Errorf("after failed calls: %d %q", w.Code, w.Header().Get("Location"))
	}

	for _, c := range []struct {
		http, https string
		clash       bool
	}{
		{":80", ":443", false},
		{":80", ":80", true},
		{"127.0.0.1:8080", ":8080", true},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8443", "127.0.0.2:8443", false},
		{":0", ":0", false},
	} {
		err := edge.CheckListeners(c.http, c.https)
		if (err != nil) != c.clash || (c.clash && !errors.Is(err, edge.ErrPortClash)) {
			t.Errorf("CheckListeners(%q, %q) = %v", c.http, c.https, err)
		}
	}
}

// TestHTTPSOff: on a server without HTTPS, a deploy with tls: is refused
// with what to do (plain HTTP would redirect to a port nobody listens on),
// unless the server serves such routes over plain HTTP (moorage up); a
// route already set is served over plain HTTP, without redirect or HSTS.
func TestHTTPSOff(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	site := []edge.Site{{Service: "web", Mode: spec.TLSAuto, Hosts: []string{"a.test", "www.a.test"}, TLS: true, HSTS: true, Canonical: "a.test"}}
	serve := func(e *edge.Edge, url string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest("GET", url, nil))
		return w
	}
	off := edge.New(next, edge.Options{HTTPSOff: true})
	err := off.Check("a", site)
	if !errors.Is(err, edge.ErrHTTPSOff) || !strings.Contains(err.Error(), `service "web" has tls: auto`) || !strings.Contains(err.Error(), "--https :443") || !strings.Contains(err.Error(), "tls: off") {
		t.Errorf("Check with HTTPS off: %v", err)
	}
	if err := off.Check("a", []edge.Site{{Service: "web", Mode: spec.TLSOff, Hosts: []string{"a.test"}}}); err != nil {
		t.Errorf("Check without tls: %v", err)
	}
	dev := edge.New(next, edge.Options{HTTPSOff: true, PlainWhenHTTPSOff: true})
	if err := dev.Check("a", site); err != nil {
		t.Errorf("Check in a dev run: %v", err)
	}
	for _, e := range []*edge.Edge{off, dev} {
		if err := e.SetApp("a", site); err != nil {
			t.Fatal(err)
		}
		if w := serve(e, "http://a.test/p"); w.Code != 299 || w.Header().Get("Strict-Transport-Security") != "" {
			t.Errorf("http://a.test/p with HTTPS off: %d %v", w.Code, w.Header())
		}
		// The canonical host still applies, over plain HTTP.
		if w := serve(e, "http://www.a.test/p"); w.Code != 308 || w.Header().Get("Location") != "http://a.test/p" {
			t.Errorf("http://www.a.test/p with HTTPS off: %d %q", w.Code, w.Header().Get("Location"))
		}
	}
	// Another app's default route: the hint says how to resolve it.
	if err := off.SetApp("b", []edge.Site{{}}); err != nil {
		t.Fatal(err)
	}
	if err := off.Check("c", []edge.Site{{}}); !errors.Is(err, edge.ErrHostConflict) || !strings.Contains(err.Error(), `give this app's routes hosts:, or deploy "b" with hosts: of its own first`) {
		t.Errorf("default route conflict: %v", err)
	}
}

// TestSitesOf reads the edge sites of a spec.
func TestSitesOf(t *testing.T) {
	sp, err := spec.Parse("moorage.yaml", []byte(`app: a
services:
  web:
    command: ./run
    http: {hosts: [a.test, www.a.test], tls: auto, canonical: a.test, hsts: true}
  admin:
    command: ./admin
    http: {hosts: [admin.a.test]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := edge.SitesOf(sp)
	if len(got) != 2 || got[0].TLS || !got[1].TLS || !got[1].HSTS || got[1].Canonical != "a.test" || got[1].Service != "web" || got[1].Mode != spec.TLSAuto {
		t.Errorf("SitesOf: %+v", got)
	}
}
