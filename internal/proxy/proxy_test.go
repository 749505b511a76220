package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoundRobin(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	bs := []*backend{newBackend(t, "w1"), newBackend(t, "w2"), newBackend(t, "w3")}
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{Hosts: []string{"shop.test"}}, Targets: targets(bs...)})

	counts := map[string]int{}
	for range 30 {
		status, body := get(t, srv.Client(), srv.URL, "shop.test")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		counts[body]++
	}
	for _, b := range bs {
		if counts[b.name] != 10 {
			t.Fatalf("round-robin over 3 targets, 30 requests: got %v", counts)
		}
	}
}

func TestUnhealthyTargetLeavesAndRejoins(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	b1, b2 := newBackend(t, "w1"), newBackend(t, "w2")
	mustSetApp(t, p, "shop", RouteTargets{
		Route:   Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Path: "/up", Interval: 10 * time.Millisecond, Retries: 2}},
		Targets: targets(b1, b2),
	})

	b1.healthy.Store(false)
	waitFor(t, "w1 to leave rotation", isHealthy(p, "shop", "w1", false))
	s, _ := statusOf(p, "shop", "w1")
	if s.ConsecutiveFailures < 2 || !strings.Contains(s.LastError, "503") || s.LastCheck.IsZero() || !s.Routed {
		t.Fatalf("status of an unhealthy target: %+v", s)
	}
	before := b1.hits.Load()
	for range 20 {
		if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 || body != "w2" {
			t.Fatalf("with w1 unhealthy: %d %q", status, body)
		}
	}
	if b1.hits.Load() != before {
		t.Fatal("an unhealthy target received requests")
	}

	b1.healthy.Store(true)
	waitFor(t, "w1 to rejoin", isHealthy(p, "shop", "w1", true))
	counts := map[string]int{}
	for range 20 {
		_, body := get(t, srv.Client(), srv.URL, "shop.test")
		counts[body]++
	}
	if counts["w1"] == 0 || counts["w2"] == 0 {
		t.Fatalf("after recovery both targets should serve: %v", counts)
	}
	if s, _ := statusOf(p, "shop", "w1"); s.ConsecutiveFailures != 0 || s.LastError != "" {
		t.Fatalf("a passing check should reset the failures: %+v", s)
	}
}

func TestTCPHealthCheck(t *testing.T) {
	p, _ := newTestProxy(t, Options{})
	live := newBackend(t, "live")
	mustSetApp(t, p, "shop", RouteTargets{
		Route:   Route{Health: HealthCheck{Interval: 10 * time.Millisecond, Retries: 1}},
		Targets: []Target{live.target(), {ID: "dead", Addr: deadAddr(t)}},
	})
	waitFor(t, "the dead target to fail its TCP check", isHealthy(p, "shop", "dead", false))
	waitFor(t, "the live target to pass its TCP check", func() bool {
		s, _ := statusOf(p, "shop", "live")
		return s.Healthy && !s.LastCheck.IsZero()
	})
}

func TestDialFailureRetriedOnAnotherTarget(t *testing.T) {
	schemes(t, testDialFailureRetriedOnAnotherTarget)
}

func testDialFailureRetriedOnAnotherTarget(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	b1, b2 := newBackend(t, "w1"), newBackend(t, "w2")
	slow := HealthCheck{Interval: time.Hour} // only the passive check acts here
	mustSetApp(t, p, "shop", RouteTargets{
		Route:   Route{Hosts: []string{"shop.test"}, Health: slow},
		Targets: append(targets(b1, b2), Target{ID: "dead", Addr: deadAddr(t)}),
	})

	// POSTs with bodies: the refused dial sent nothing, so the body is still
	// there for the next target.
	for i := range 12 {
		body := strings.Repeat("x", 1000+i)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Host = "shop.test"
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || (string(got) != "w1" && string(got) != "w2") {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, got)
		}
	}
	s, _ := statusOf(p, "shop", "dead")
	if s.Healthy || !strings.Contains(s.LastError, "dial") {
		t.Fatalf("a refused dial should take the target out at once: %+v", s)
	}

	// Stop a live backend (listener and connections): no client sees it.
	b1.srv.Close()
	for i := range 30 {
		if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 || body != "w2" {
			t.Fatalf("request %d after w1 stopped: %d %q", i, status, body)
		}
	}
	if s, _ := statusOf(p, "shop", "w1"); s.Healthy {
		t.Fatalf("w1 should be out of rotation: %+v", s)
	}
}

func TestUnavailablePage(t *testing.T) { schemes(t, testUnavailablePage) }

func testUnavailablePage(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{RetryAfter: 7 * time.Second}, ServerOptions{})
	b := newBackend(t, "w1")
	b.healthy.Store(false)
	mustSetApp(t, p, "shop", RouteTargets{
		Route:   Route{Service: "web", Hosts: []string{"shop.test"}, Health: HealthCheck{Path: "/up", Interval: 10 * time.Millisecond, Retries: 1}},
		Targets: targets(b),
	})
	waitFor(t, "w1 to leave rotation", isHealthy(p, "shop", "w1", false))

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Host = "shop.test"
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "7" ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "No healthy instance of shop/web; the app is being deployed or is down") {
		t.Fatalf("got %d Retry-After=%q %q", res.StatusCode, res.Header.Get("Retry-After"), body)
	}

	// A route without targets answers the same way.
	mustSetApp(t, p, "empty", RouteTargets{Route: Route{Service: "web", Hosts: []string{"empty.test"}}})
	if status, body := get(t, srv.Client(), srv.URL, "empty.test"); status != 503 || !strings.Contains(body, "empty/web") {
		t.Fatalf("route without targets: %d %q", status, body)
	}
}

func TestHoldUntilHealthy(t *testing.T) { schemes(t, testHoldUntilHealthy) }

func testHoldUntilHealthy(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	b1 := newBackend(t, "w1")
	b1.healthy.Store(false)
	route := Route{
		Hosts:       []string{"shop.test"},
		Health:      HealthCheck{Path: "/up", Interval: 10 * time.Millisecond, Retries: 1},
		HoldTimeout: 30 * time.Second,
	}
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b1)})
	waitFor(t, "w1 to leave rotation", isHealthy(p, "shop", "w1", false))

	type result struct {
		status int
		body   string
		err    error
	}
	hold := func() chan result {
		ch := make(chan result, 1)
		go func() {
			status, body, err := tryGet(srv.Client(), srv.URL, "shop.test")
			ch <- result{status, body, err}
		}()
		waitFor(t, "the request to hold", func() bool { return p.holding.Load() == 1 })
		return ch
	}

	// A healthy target appears through a SetApp (a deploy's cutover).
	ch := hold()
	b2 := newBackend(t, "w2")
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b1, b2)})
	if r := <-ch; r.err != nil || r.status != 200 || r.body != "w2" {
		t.Fatalf("held request after a healthy target appeared: %+v", r)
	}

	// The only target recovers.
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b1)})
	ch = hold()
	b1.healthy.Store(true)
	if r := <-ch; r.err != nil || r.status != 200 || r.body != "w1" {
		t.Fatalf("held request after the target recovered: %+v", r)
	}

	// Nothing comes back within HoldTimeout: the 503.
	b1.healthy.Store(false)
	waitFor(t, "w1 to leave rotation", isHealthy(p, "shop", "w1", false))
	route.HoldTimeout = 50 * time.Millisecond
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b1)})
	if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 503 || !strings.Contains(body, "shop/web") {
		t.Fatalf("after HoldTimeout: %d %q", status, body)
	}
	if n := p.holding.Load(); n != 0 {
		t.Fatalf("%d requests still counted as holding", n)
	}
}

func TestUpstreamErrors(t *testing.T) {
	p, srv := newTestProxy(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hangup := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // connection reset before any response
		}
	})
	stall := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a client leaving (the proxy giving up) only once
		// the body was read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mustSetApp(t, p, "hangup", RouteTargets{Route: Route{Hosts: []string{"hangup.test"}}, Targets: []Target{{ID: "h", Addr: hangup.Listener.Addr().String()}}})
	mustSetApp(t, p, "stall", RouteTargets{Route: Route{Hosts: []string{"stall.test"}}, Targets: []Target{{ID: "s", Addr: stall.Listener.Addr().String()}}})

	if status, body := get(t, srv.Client(), srv.URL, "hangup.test"); status != http.StatusBadGateway || !strings.Contains(body, "502") {
		t.Fatalf("upstream hung up: %d %q", status, body)
	}
	if status, body := get(t, srv.Client(), srv.URL, "stall.test"); status != http.StatusGatewayTimeout || !strings.Contains(body, "504") {
		t.Fatalf("upstream timed out: %d %q", status, body)
	}
	// The same on the slow path (a request with a body: net/http's
	// Transport and its ResponseHeaderTimeout).
	for _, idem := range []string{"", "k1"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("payload"))
		req.Host = "stall.test"
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "504") {
			t.Fatalf("upstream timed out on the slow path (Idempotency-Key %q): %d %q", idem, res.StatusCode, body)
		}
	}
	// Neither is a dial failure: the targets stay in rotation.
	for _, id := range []string{"h", "s"} {
		if s, _ := statusOf(p, "", id); !s.Healthy {
			t.Fatalf("%s left rotation after a non-dial failure: %+v", id, s)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	echo := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"host":  r.Host,
			"xff":   r.Header.Get("X-Forwarded-For"),
			"proto": r.Header.Get("X-Forwarded-Proto"),
			"xfh":   r.Header.Get("X-Forwarded-Host"),
			"query": r.URL.RawQuery,
			"path":  r.URL.Path,
		})
	})
	p := New(Options{Logger: testLogger(t)})
	t.Cleanup(func() { _ = p.Close() })
	mustSetApp(t, p, "echo", RouteTargets{Route: Route{Hosts: []string{"app.test"}}, Targets: []Target{{ID: "e", Addr: echo.Listener.Addr().String()}}})
	plain := httptest.NewServer(p)
	t.Cleanup(plain.Close)
	tls := httptest.NewTLSServer(p)
	t.Cleanup(tls.Close)

	for _, tc := range []struct {
		srv   *httptest.Server
		proto string
	}{{plain, "http"}, {tls, "https"}} {
		req, _ := http.NewRequest(http.MethodGet, tc.srv.URL+"/a%2Fb/c?x=1;y=2&z", nil)
		req.Host = "App.Test"
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("X-Forwarded-Proto", "gopher") // replaced, not trusted
		res, err := tc.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"host": "App.Test", "xff": "203.0.113.7, 127.0.0.1", "proto": tc.proto, "xfh": "App.Test",
			"query": "x=1;y=2&z", "path": "/a/b/c",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: upstream saw %s=%q, want %q", tc.proto, k, got[k], v)
			}
		}
	}
}

func TestMaxBody(t *testing.T) { schemes(t, testMaxBody) }

func testMaxBody(t *testing.T, sch scheme) {
	spool := t.TempDir()
	p, srv := newTestProxyScheme(t, sch, Options{BodyBufferDir: spool}, ServerOptions{})
	type seen struct {
		n      int
		length int64
		te     []string
		sum    [32]byte
	}
	var mu sync.Mutex
	var calls []seen
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, seen{len(b), r.ContentLength, r.TransferEncoding, sha256.Sum256(b)})
		mu.Unlock()
		if err != nil {
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	const limit = 300 << 10 // over the in-memory part: large bodies spill to a file
	mustSetApp(t, p, "up", RouteTargets{Route: Route{Hosts: []string{"up.test"}, MaxBody: limit}, Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})

	post := func(body io.Reader, size int64) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
		req.Host = "up.test"
		req.ContentLength = size
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// chunked hides a reader's length from the client: the body goes out
	// chunked, with no declared length.
	chunked := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }
	calledWith := func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}

	// Over the limit, declared or not: 413, and the app is never called.
	if status, body := post(bytes.NewReader(make([]byte, limit+1)), limit+1); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "413") {
		t.Fatalf("declared body over the limit: %d %q", status, body)
	}
	for _, size := range []int{limit + 1, 2 * limit} {
		if status, body := post(chunked(make([]byte, size)), -1); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "413") {
			t.Fatalf("chunked body of %d bytes over the limit: %d %q", size, status, body)
		}
	}
	if c := calledWith(); len(c) != 0 {
		t.Fatalf("the app was called for requests over max_body: %+v", c)
	}

	// Within it: the app gets the whole body, with its length declared (a
	// small one from memory, a large one from the spill file).
	for i, size := range []int{0, 100, 64 << 10, 64<<10 + 1, limit} {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(j*7 + i)
		}
		if status, body := post(chunked(b), -1); status != 200 || body != "ok" {
			t.Fatalf("chunked body of %d bytes: %d %q", size, status, body)
		}
		c := calledWith()
		got := c[len(c)-1]
		if got.n != size || got.sum != sha256.Sum256(b) || got.length != int64(size) || len(got.te) != 0 {
			t.Fatalf("chunked body of %d bytes reached the app as %d bytes, Content-Length %d, Transfer-Encoding %v, same bytes %v",
				size, got.n, got.length, got.te, got.sum == sha256.Sum256(b))
		}
	}
	if status, body := post(bytes.NewReader(make([]byte, limit)), limit); status != 200 || body != "ok" {
		t.Fatalf("declared body at the limit: %d %q", status, body)
	}
	// The spill files were unlinked at once.
	if ents, err := os.ReadDir(spool); err != nil || len(ents) != 0 {
		t.Fatalf("body buffer dir holds %v (%v)", ents, err)
	}
}

// TestMaxBodyBrokenChunked: a chunked body that breaks off gets a 400, and
// the app is not called.
func TestMaxBodyBrokenChunked(t *testing.T) { schemes(t, testMaxBodyBrokenChunked) }

func testMaxBodyBrokenChunked(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	var calls atomic.Int64
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	mustSetApp(t, p, "up", RouteTargets{Route: Route{MaxBody: 1000}, Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})
	c, br := rawConn(t, srv)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	if res, _ := readResponse(t, br, "POST"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken chunked body: %d", res.StatusCode)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the app was called %d times for a broken body", n)
	}
}

// TestBodyBufferBudget: bodies spilled to disk at once share a budget; past
// it a request gets a 503 (the app is not called), and the budget is given
// back when a buffered request ends.
func TestBodyBufferBudget(t *testing.T) {
	const budget = 200 << 10
	p, srv := newTestProxy(t, Options{BodyBufferDir: t.TempDir(), BodyBufferBudget: budget})
	var calls atomic.Int64
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
	})
	mustSetApp(t, p, "up", RouteTargets{Route: Route{MaxBody: 1 << 20}, Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})
	post := func(size int) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, io.MultiReader(bytes.NewReader(make([]byte, size))))
		req.ContentLength = -1
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(budget + 1); code != http.StatusServiceUnavailable || calls.Load() != 0 {
		t.Fatalf("a body over the buffer budget: %d, app called %d times; want 503, never", code, calls.Load())
	}
	for range 3 { // each within it, one after the other: the budget comes back
		if code := post(budget - 1); code != 200 {
			t.Fatalf("a body within the buffer budget: %d", code)
		}
	}
	if n := p.spooled.Load(); n != 0 {
		t.Fatalf("%d bytes of budget still taken after the requests ended", n)
	}
}

// TestMaxBodyUpgradeHeader: an Upgrade header without "Connection:
// upgrade" does not lift max_body off a chunked body: the app never gets
// more than the limit.
func TestMaxBodyUpgradeHeader(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	var got atomic.Int64
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(n)
	})
	const limit = 100
	mustSetApp(t, p, "up", RouteTargets{Route: Route{MaxBody: limit}, Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL, io.MultiReader(bytes.NewReader(make([]byte, 1<<20))))
	req.ContentLength = -1
	req.Header.Set("Upgrade", "x")
	res, err := srv.Client().Do(req)
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK && got.Load() > limit {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if n := got.Load(); n > limit {
		t.Fatalf("the app read %d bytes of a body over max_body (%d)", n, limit)
	}
}

func TestStreamingResponseIsFlushed(t *testing.T) { schemes(t, testStreamingResponseIsFlushed) }

func testStreamingResponseIsFlushed(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	release := make(chan struct{})
	stream := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	mustSetApp(t, p, "events", RouteTargets{Route: Route{Hosts: []string{"events.test"}}, Targets: []Target{{ID: "ev", Addr: stream.Listener.Addr().String()}}})

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Host = "events.test"
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// The first event arrives while the upstream is still writing.
	buf := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "data: first\n\n" {
		close(release)
		t.Fatalf("first event: %q %v", buf, err)
	}
	close(release)
	rest, _ := io.ReadAll(res.Body)
	if string(rest) != "data: second\n\n" {
		t.Fatalf("second event: %q", rest)
	}
}

func TestCloseStopsHealthCheckers(t *testing.T) {
	p := New(Options{Logger: testLogger(t)})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{Health: HealthCheck{Path: "/up", Interval: 5 * time.Millisecond}}, Targets: targets(b)})
	waitFor(t, "a first check", func() bool { s, _ := statusOf(p, "shop", "w1"); return !s.LastCheck.IsZero() })
	p.mu.Lock()
	done := p.targets["w1"].checker.done
	p.mu.Unlock()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the health checker stopped")
	}
	if err := p.SetApp("shop", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetApp after Close: %v", err)
	}
}

// BenchmarkProxy measures a GET through the proxy to a real loopback backend.
func BenchmarkProxy(b *testing.B) {
	be := newBackend(b, "w1")
	p, srv := newTestProxy(b, Options{})
	mustSetApp(b, p, "shop", RouteTargets{Route: Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Interval: time.Hour}}, Targets: targets(be)})
	c := srv.Client()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "shop.test"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatal(res.StatusCode)
		}
	}
}
