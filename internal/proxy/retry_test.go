package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hangupBackend accepts requests and drops the connection without an
// answer, as an app that crashed mid-request does; it counts what it got.
type hangupBackend struct {
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	seen  map[string]int // method → requests
	total atomic.Int64
}

func newHangupBackend(t *testing.T) *hangupBackend {
	t.Helper()
	h := &hangupBackend{seen: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ln = ln
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			io.WriteString(w, "up")
			return
		}
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.seen[r.Method]++
		h.mu.Unlock()
		h.total.Add(1)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	})}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *hangupBackend) count(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[method]
}

// recordingBackend answers with its name and records the bodies it got.
type recordingBackend struct {
	*backend
	mu     sync.Mutex
	bodies []string
}

func newRecordingBackend(t *testing.T, name string) *recordingBackend {
	t.Helper()
	rb := &recordingBackend{}
	srv := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			io.WriteString(w, "up")
			return
		}
		b, _ := io.ReadAll(r.Body)
		rb.mu.Lock()
		rb.bodies = append(rb.bodies, string(b))
		rb.mu.Unlock()
		rb.hits.Add(1)
		io.WriteString(w, name)
	})
	rb.backend = &backend{name: name, srv: srv}
	return rb
}

// TestRetryPolicy sends requests to a route with an instance that drops
// every request after receiving it and a healthy one: idempotent requests
// (GET, HEAD, OPTIONS, or with an Idempotency-Key) are retried on the
// healthy instance; a POST without a key is never sent twice, and gets the
// 502.
func TestRetryPolicy(t *testing.T) { schemes(t, testRetryPolicy) }

func testRetryPolicy(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	bad := newHangupBackend(t)
	good := newRecordingBackend(t, "good")
	slow := HealthCheck{Path: "/up", Interval: time.Hour}
	mustSetApp(t, p, "shop", RouteTargets{
		Route:   Route{Health: slow},
		Targets: []Target{{ID: "bad", Addr: bad.ln.Addr().String()}, good.target()},
	})
	do := func(method, body string, key bool) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, srv.URL+"/x", rd)
		if key {
			req.Header.Set("Idempotency-Key", "k-"+method)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// Round-robin: of every two requests one lands on the bad instance first.
	for i := range 6 {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
			status, body := do(m, "", false)
			if status != 200 || (m != http.MethodHead && body != "good") {
				t.Fatalf("%s %d: %d %q, want a retry on the good instance", m, i, status, body)
			}
		}
		if status, body := do(http.MethodPut, "payload-"+strings.Repeat("x", i), true); status != 200 || body != "good" {
			t.Fatalf("PUT with an Idempotency-Key %d: %d %q", i, status, body)
		}
		if status, body := do(http.MethodDelete, "", true); status != 200 || body != "good" {
			t.Fatalf("DELETE with an Idempotency-Key %d: %d %q", i, status, body)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete} {
		if bad.count(m) == 0 {
			t.Errorf("no %s reached the bad instance: the test did not exercise the retry", m)
		}
	}
	// Every PUT body arrived whole, retried or not.
	good.mu.Lock()
	got := strings.Join(good.bodies, "|")
	good.mu.Unlock()
	for i := range 6 {
		if want := "payload-" + strings.Repeat("x", i); !strings.Contains("|"+got+"|", "|"+want+"|") {
			t.Errorf("the good instance never got the body %q (got %q)", want, got)
		}
	}

	// POSTs without a key: each reaches at most one instance.
	failed := 0
	for i := range 8 {
		body := ""
		if i%2 == 0 {
			body = "order-" + strings.Repeat("y", i) // with a body (net/http path) and without (the front)
		}
		status, got := do(http.MethodPost, body, false)
		switch {
		case status == http.StatusBadGateway && strings.Contains(got, "502"):
			failed++
		case status == 200 && got == "good":
		default:
			t.Fatalf("POST %d: %d %q", i, status, got)
		}
	}
	if failed == 0 || failed != bad.count(http.MethodPost) {
		t.Fatalf("POSTs: %d answered 502, the bad instance received %d: a POST was retried after it was sent", failed, bad.count(http.MethodPost))
	}
	// Dropped requests do not take an instance out (only refused
	// connections do).
	if s, _ := statusOf(p, "shop", "bad"); !s.Healthy {
		t.Fatalf("an instance that answered the connection left rotation: %+v", s)
	}
}

// TestPassiveHealth: an instance that refuses connections leaves the pool
// at the first refused request, before any active check could notice, and
// returns once its active check passes.
func TestPassiveHealth(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	good := newBackend(t, "good")
	addr := deadAddr(t)
	mustSetApp(t, p, "shop", RouteTargets{
		// Three failed checks 50ms apart would take 150ms; the passive
		// check acts on the first refused connection.
		Route:   Route{Health: HealthCheck{Path: "/up", Interval: 50 * time.Millisecond, Retries: 3}},
		Targets: []Target{{ID: "flaky", Addr: addr}, good.target()},
	})
	// Requests keep succeeding; the first that tries flaky takes it out.
	for i := range 4 {
		if status, body := get(t, srv.Client(), srv.URL, "h"); status != 200 || body != "good" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	s, _ := statusOf(p, "shop", "flaky")
	if s.Healthy || !strings.Contains(s.LastError, "refused") {
		t.Fatalf("a refused connection should take the instance out at once: %+v", s)
	}

	// The instance comes up at its address: the active check brings it back.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	flaky := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "flaky") })}
	go flaky.Serve(ln)
	t.Cleanup(func() { flaky.Close() })
	waitFor(t, "flaky to pass its active check", isHealthy(p, "shop", "flaky", true))
	seen := map[string]bool{}
	for range 10 {
		_, body := get(t, srv.Client(), srv.URL, "h")
		seen[body] = true
	}
	if !seen["flaky"] || !seen["good"] {
		t.Fatalf("after recovery both instances should serve: %v", seen)
	}
}

// TestSetAppMovedTarget: the engine routes a restarted instance (same ID)
// at its new port; the proxy replaces the target.
func TestSetAppMovedTarget(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	before := newBackend(t, "web-1")
	after := newBackend(t, "web-1-restarted")
	route := Route{Health: HealthCheck{Path: "/up", Interval: time.Hour}}
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: []Target{{ID: "web-1", Addr: before.addr()}}})
	if _, body := get(t, srv.Client(), srv.URL, "h"); body != "web-1" {
		t.Fatalf("before: %q", body)
	}
	old := p.lookupTarget("web-1")
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: []Target{{ID: "web-1", Addr: after.addr()}}})
	for range 4 {
		if _, body := get(t, srv.Client(), srv.URL, "h"); body != "web-1-restarted" {
			t.Fatalf("after the move: %q", body)
		}
	}
	st := p.Status("shop")
	if len(st) != 1 || st[0].ID != "web-1" || st[0].Addr != after.addr() || !st[0].Routed || !st[0].Healthy {
		t.Fatalf("status after the move: %+v", st)
	}
	if !old.forgotten.Load() || old.routed.Load() {
		t.Fatal("the old target should be unrouted and forgotten")
	}
	// Drain of the ID (the engine's next cutover) finds the routed target
	// and leaves it alone.
	if n := p.Drain(bg, []string{"web-1"}, time.Second); n != 0 {
		t.Fatalf("Drain: %d", n)
	}
	// One SetApp listing an ID at two addresses is refused.
	err := p.SetApp("shop", []RouteTargets{{Route: route, Targets: []Target{{ID: "x", Addr: before.addr()}, {ID: "x", Addr: after.addr()}}}})
	if err == nil || !strings.Contains(err.Error(), "two addresses") {
		t.Fatalf("one ID at two addresses: %v", err)
	}
}

// An idempotent request that failed after it was sent, with no other
// healthy instance left, waits (up to HoldTimeout) for the route to change
// (a rollback swapping back to the previous release) instead of failing.
func TestRetryHoldsUntilRouteChanges(t *testing.T) {
	p := New(Options{})
	t.Cleanup(func() { p.Close() })
	// The only target accepts the request, then drops the connection.
	dying := newHangupBackend(t).ln.Addr().String()
	good := newBackend(t, "good").addr()
	route := Route{App: "a", Service: "web", HoldTimeout: 10 * time.Second, Health: HealthCheck{Interval: time.Hour}}
	if err := p.SetApp("a", []RouteTargets{{Route: route, Targets: []Target{{ID: "a-web-v2-1", Addr: dying}}}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	// Wait until the request is held, then swap back.
	deadline := time.Now().Add(10 * time.Second)
	for p.holding.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.holding.Load() == 0 {
		t.Fatal("the request was not held")
	}
	if err := p.SetApp("a", []RouteTargets{{Route: route, Targets: []Target{{ID: "a-web-v1-1", Addr: good}}}}); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "200 good" {
		t.Fatalf("got %q, want the answer of the instance swapped back in", got)
	}
}
