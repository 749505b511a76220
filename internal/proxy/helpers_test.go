package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
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
// net/http behind it), the way moorage serves it.
type testServer struct {
	URL      string
	Listener net.Listener
	Server   *Server
	client   *http.Client
}

// Client returns a keep-alive client for the server.
func (s *testServer) Client() *http.Client { return s.client }

// newTestProxy returns a proxy served by a real loopback server.
func newTestProxy(t testing.TB, opts Options) (*Proxy, *testServer) {
	t.Helper()
	return newTestProxyServer(t, opts, ServerOptions{})
}

// newTestProxyServer is newTestProxy with server options.
func newTestProxyServer(t testing.TB, opts Options, sopts ServerOptions) (*Proxy, *testServer) {
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
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = s.Close()
		<-done
		_ = p.Close()
	})
	return p, &testServer{URL: "http://" + ln.Addr().String(), Listener: ln, Server: s, client: &http.Client{Transport: tr}}
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
