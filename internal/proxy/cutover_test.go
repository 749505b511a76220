package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func ids(bs []*backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.name
	}
	return out
}

func hitsOf(bs []*backend) int64 {
	var n int64
	for _, b := range bs {
		n += b.hits.Load()
	}
	return n
}

// TestSetAppSwapUnderLoad swaps an app 20 times between two sets of targets
// while 8 clients hammer it: no request fails, every answer comes from one of
// the two sets, and once SetApp returned and Drain saw the old set idle, no
// request reaches the old set.
func TestSetAppSwapUnderLoad(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	sets := [2][]*backend{
		{newBackend(t, "blue-1"), newBackend(t, "blue-2")},
		{newBackend(t, "green-1"), newBackend(t, "green-2")},
	}
	valid := map[string]bool{}
	for _, set := range sets {
		for _, b := range set {
			valid[b.name] = true
		}
	}
	route := Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Path: "/up", Interval: 50 * time.Millisecond}}
	swap := func(set []*backend) { mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(set...)}) }
	swap(sets[0])

	var (
		stop             atomic.Bool
		wg               sync.WaitGroup
		total, failed    atomic.Int64
		firstFailureOnce sync.Once
		firstFailure     string
	)
	for range 8 {
		wg.Go(func() {
			c := srv.Client()
			for !stop.Load() {
				status, body, err := tryGet(c, srv.URL, "shop.test")
				total.Add(1)
				if err != nil || status != http.StatusOK || !valid[body] {
					failed.Add(1)
					firstFailureOnce.Do(func() { firstFailure = body + " " + http.StatusText(status) })
					if err != nil {
						firstFailureOnce.Do(func() { firstFailure = err.Error() })
					}
				}
			}
		})
	}

	var drainedHits [2]int64
	cur := 0
	for i := range 20 {
		next := 1 - cur
		if i > 0 && hitsOf(sets[next]) != drainedHits[next] {
			t.Fatalf("swap %d: the drained set received %d requests while unrouted", i, hitsOf(sets[next])-drainedHits[next])
		}
		swap(sets[next])
		for range 4 {
			_, body := get(t, srv.Client(), srv.URL, "shop.test")
			if body != sets[next][0].name && body != sets[next][1].name {
				t.Fatalf("swap %d: a request made after SetApp returned reached %q", i, body)
			}
		}
		// Let the clients run against the new set before draining the old.
		mark := total.Load()
		waitFor(t, "clients to make requests", func() bool { return total.Load() >= mark+16 })
		if n := p.Drain(context.Background(), ids(sets[cur]), 10*time.Second); n != 0 {
			t.Fatalf("swap %d: Drain left %d requests in flight", i, n)
		}
		drainedHits[cur] = hitsOf(sets[cur])
		cur = next
	}
	for range 20 {
		_, body := get(t, srv.Client(), srv.URL, "shop.test")
		if body != sets[cur][0].name && body != sets[cur][1].name {
			t.Fatalf("after the last swap a request reached %q", body)
		}
	}
	if hitsOf(sets[1-cur]) != drainedHits[1-cur] {
		t.Fatal("the drained set received requests after the last swap")
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the swaps; first: %s", failed.Load(), total.Load(), firstFailure)
	}
	if total.Load() < 100 {
		t.Fatalf("only %d requests made during the swaps", total.Load())
	}
	t.Logf("%d requests across 20 swaps, 0 failed", total.Load())
}

func TestDrain(t *testing.T) { schemes(t, testDrain) }

func testDrain(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = w.Write([]byte("old"))
	})
	fresh := newBackend(t, "new")
	route := Route{Hosts: []string{"shop.test"}}
	old := Target{ID: "old", Addr: slow.Listener.Addr().String()}

	type result struct {
		status int
		body   string
		err    error
	}
	// inFlight starts a request to the slow target and waits until it arrived.
	inFlight := func() chan result {
		mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: []Target{old}})
		ch := make(chan result, 1)
		go func() {
			status, body, err := tryGet(srv.Client(), srv.URL, "shop.test")
			ch <- result{status, body, err}
		}()
		<-started
		mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: []Target{fresh.target()}})
		if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 || body != "new" {
			t.Fatalf("after the swap: %d %q", status, body)
		}
		s, ok := statusOf(p, "shop", "old")
		if !ok || s.Routed || s.InFlight != 1 {
			t.Fatalf("old target after the swap: %+v", s)
		}
		return ch
	}

	// The in-flight request finishes: Drain returns 0 and forgets the target.
	ch := inFlight()
	drained := make(chan int, 1)
	go func() { drained <- p.Drain(context.Background(), []string{"old"}, 30*time.Second) }()
	waitFor(t, "Drain to wait on the target", func() bool { return p.drainWaiters("old") > 0 })
	select {
	case n := <-drained:
		t.Fatalf("Drain returned %d while a request was in flight", n)
	default:
	}
	release <- struct{}{}
	if r := <-ch; r.err != nil || r.status != 200 || r.body != "old" {
		t.Fatalf("the in-flight request to the old target: %+v", r)
	}
	if n := <-drained; n != 0 {
		t.Fatalf("Drain after the request finished: %d", n)
	}
	if _, ok := statusOf(p, "shop", "old"); ok {
		t.Fatal("a drained target should be forgotten")
	}

	// The timeout hits first: Drain reports the request, which still finishes.
	ch = inFlight()
	if n := p.Drain(context.Background(), []string{"old"}, 50*time.Millisecond); n != 1 {
		t.Fatalf("Drain at its timeout: %d in flight, want 1", n)
	}
	release <- struct{}{}
	if r := <-ch; r.err != nil || r.status != 200 || r.body != "old" {
		t.Fatalf("the in-flight request after Drain timed out: %+v", r)
	}

	// ctx ends first.
	ch = inFlight()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := p.Drain(ctx, []string{"old"}, time.Minute); n != 1 {
		t.Fatalf("Drain with a canceled ctx: %d in flight, want 1", n)
	}
	release <- struct{}{}
	<-ch

	// A target routed again (rollback) is neither waited for nor forgotten.
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: []Target{fresh.target()}})
	if n := p.Drain(context.Background(), []string{"new", "unknown"}, time.Minute); n != 0 {
		t.Fatalf("Drain of a routed target: %d", n)
	}
	if s, ok := statusOf(p, "shop", "new"); !ok || !s.Routed {
		t.Fatalf("a routed target was forgotten: %+v", s)
	}
}

// TestTargetKeepsStateAcrossSetApp checks that a target present in both the
// old and the new routes keeps its health state and connections.
func TestTargetKeepsStateAcrossSetApp(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	b1, b2 := newBackend(t, "w1"), newBackend(t, "w2")
	route := Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Path: "/up", Interval: 10 * time.Millisecond, Retries: 1}}
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b1)})
	get(t, srv.Client(), srv.URL, "shop.test")
	before := p.lookupTarget("w1")

	b1.healthy.Store(false)
	waitFor(t, "w1 to leave rotation", isHealthy(p, "shop", "w1", false))
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b1, b2)})
	if p.lookupTarget("w1") != before {
		t.Fatal("a target that stayed was replaced")
	}
	if s, _ := statusOf(p, "shop", "w1"); s.Healthy {
		t.Fatal("a target that stayed lost its health state")
	}
	if s, _ := statusOf(p, "shop", "w2"); !s.Healthy {
		t.Fatal("a new target should start healthy")
	}
}
