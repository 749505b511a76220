package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a real HTTP server on 127.0.0.1 that answers with its name and
// counts the requests it received (health checks aside).
type backend struct {
	name    string
	srv     *httptest.Server
	hits    atomic.Int64
	healthy atomic.Bool // what /up answers
}

func newBackend(t testing.TB, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.healthy.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			if !b.healthy.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "up")
			return
		}
		b.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, b.name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) target() Target { return Target{ID: b.name, Addr: b.addr()} }

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

// newHandlerBackend serves h on 127.0.0.1.
func newHandlerBackend(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// deadAddr returns an address on 127.0.0.1 where nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PROXY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testServer is a Proxy served on loopback by its Server (front and
// net/http behind it), the way moorage serves it: over plain HTTP, or over
// TLS (TLS set).
type testServer struct {
	URL      string
	Listener net.Listener
	Server   *Server
	TLS      *tls.Config // the client's side (nil: plain HTTP)
	client   *http.Client
}

// Client returns a keep-alive HTTP/1.1 client for the server.
func (s *testServer) Client() *http.Client { return s.client }

// dial opens a client connection to the server (over TLS when it serves
// TLS, handshake done, HTTP/1.1 by ALPN).
func (s *testServer) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := s.tryDial()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *testServer) tryDial() (net.Conn, error) {
	if s.TLS == nil {
		return net.Dial("tcp", s.Listener.Addr().String())
	}
	return tls.Dial("tcp", s.Listener.Addr().String(), s.TLS)
}

// scheme is how a test reaches the proxy: "http" (the front on a plain
// listener) or "https" (the same over TLS).
type scheme string

// schemes runs f once over plain HTTP and once over TLS, as subtests.
func schemes(t *testing.T, f func(t *testing.T, sch scheme)) {
	for _, sch := range []scheme{"http", "https"} {
		t.Run(string(sch), func(t *testing.T) { f(t, sch) })
	}
}

// newTestProxy returns a proxy served by a real loopback server.
func newTestProxy(t testing.TB, opts Options) (*Proxy, *testServer) {
	t.Helper()
	return newTestProxyServer(t, opts, ServerOptions{})
}

// newTestProxyServer is newTestProxy with server options.
func newTestProxyServer(t testing.TB, opts Options, sopts ServerOptions) (*Proxy, *testServer) {
	t.Helper()
	return newTestProxyScheme(t, "http", opts, sopts)
}

// newTestProxyScheme is newTestProxyServer over plain HTTP or TLS.
func newTestProxyScheme(t testing.TB, sch scheme, opts Options, sopts ServerOptions) (*Proxy, *testServer) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	p := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewServer(sopts)
	done := make(chan struct{})
	ts := &testServer{URL: string(sch) + "://" + ln.Addr().String(), Listener: ln, Server: s}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	var serverTLS *tls.Config
	if sch == "https" {
		serverTLS = testServerTLS(t)
	}
	go func() {
		defer close(done)
		if serverTLS != nil {
			_ = s.ServeTLS(ln, serverTLS)
		} else {
			_ = s.Serve(ln)
		}
	}()
	if sch == "https" {
		ts.TLS = testClientTLS(t, "http/1.1")
		tr.TLSClientConfig = ts.TLS
	}
	ts.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = s.Close()
		<-done
		_ = p.Close()
	})
	return p, ts
}

// testCert is a self-signed ECDSA P-256 certificate for 127.0.0.1,
// localhost and *.test, made once.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "moorage proxy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost", "*.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
})

// testServerTLS is the server side of the test certificate (h2 and
// http/1.1 offered, as moorage's certificate manager does).
func testServerTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
}

// testClientTLS trusts the test certificate and offers protos by ALPN.
func testClientTLS(t testing.TB, protos ...string) *tls.Config {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{RootCAs: pool, NextProtos: protos}
}

func targets(bs ...*backend) []Target {
	out := make([]Target, len(bs))
	for i, b := range bs {
		out[i] = b.target()
	}
	return out
}

func mustSetApp(t testing.TB, p *Proxy, app string, routes ...RouteTargets) {
	t.Helper()
	if err := p.SetApp(app, routes); err != nil {
		t.Fatalf("SetApp(%s): %v", app, err)
	}
}

// get requests url with the given Host and returns the status and body.
func get(t testing.TB, c *http.Client, url, host string) (int, string) {
	t.Helper()
	status, body, err := tryGet(c, url, host)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	return status, body
}

func tryGet(c *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// waitFor polls cond every few milliseconds up to a generous deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusOf(p *Proxy, app, id string) (TargetStatus, bool) {
	for _, s := range p.Status(app) {
		if s.ID == id {
			return s, true
		}
	}
	return TargetStatus{}, false
}

func isHealthy(p *Proxy, app, id string, want bool) func() bool {
	return func() bool {
		s, ok := statusOf(p, app, id)
		return ok && s.Healthy == want
	}
}

var bg = context.Background()

// lookupTarget peeks at the proxy's target registry.
func (p *Proxy) lookupTarget(id string) *target {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.targets[id]
}

// drainWaiters reports how many Drain calls wait on target id.
func (p *Proxy) drainWaiters(id string) int32 {
	if t := p.lookupTarget(id); t != nil {
		return t.waiters.Load()
	}
	return 0
}
