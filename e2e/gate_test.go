package e2e

import (
	"flag"
	"strconv"
	"sync"
	"testing"
	"time"
)

// How many end-to-end tests run at once. Go's -parallel limit would do,
// but it cannot put one test first: the swarm tests (TestSwarm), limited
// by the clusters a machine runs at once, are the suite's longest path,
// and as ordinary parallel tests they started when Go's scheduler picked
// them (in a full run, once half the other tests had run, or they waited
// for a cluster while holding one of the slots). So TestMain takes the
// -parallel the suite was given for this gate, which lets the swarm
// tests go first, and lifts Go's own limit for this package. Every test
// takes a slot with parallel(t) (TestSwarm's with slots.acquire(true))
// instead of t.Parallel().
var slots gate

// takeParallel sets slots from -parallel and lifts Go's limit for the
// tests of this package (they wait for slots instead). Call it before
// m.Run.
func takeParallel() {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.parallel")
	n, err := strconv.Atoi(f.Value.String())
	if err != nil || n < 1 {
		n = 1
	}
	slots.free = n
	f.Value.Set("100000")
}

// parallel is t.Parallel() and a slot of slots, given back when t ends.
// A test whose subtests run in parallel calls t.Parallel() instead: its
// subtests take the slots.
func parallel(t *testing.T) {
	t.Parallel()
	slots.acquire(false)
	t.Cleanup(slots.release)
}

// gate is a counting semaphore whose first-class waiters (the swarm
// tests) go before the others.
type gate struct {
	mu     sync.Mutex
	free   int
	first  []chan struct{}
	others []chan struct{}
}

func (g *gate) acquire(first bool) {
	g.mu.Lock()
	if g.free > 0 && (first || len(g.first) == 0) {
		g.free--
		g.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	if first {
		g.first = append(g.first, ch)
	} else {
		g.others = append(g.others, ch)
	}
	g.mu.Unlock()
	<-ch
}

// release gives the slot to the longest-waiting first-class waiter, else
// to the longest-waiting other one, else back.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case len(g.first) > 0:
		close(g.first[0])
		g.first = g.first[1:]
	case len(g.others) > 0:
		close(g.others[0])
		g.others = g.others[1:]
	default:
		g.free++
	}
}

// The gate hands its slots out first-class first, then in arrival order,
// and never more than it has.
func TestGate(t *testing.T) {
	g := gate{free: 1}
	g.acquire(false) // the one slot
	got := make(chan string, 3)
	queue := func(name string, first bool) {
		g.mu.Lock()
		before := len(g.first) + len(g.others)
		g.mu.Unlock()
		go func() {
			g.acquire(first)
			got <- name
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g.mu.Lock()
			n := len(g.first) + len(g.others)
			g.mu.Unlock()
			if n > before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not queue", name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	queue("other 1", false)
	queue("other 2", false)
	queue("swarm", true)
	for _, want := range []string{"swarm", "other 1", "other 2"} {
		g.release()
		if name := <-got; name != want {
			t.Fatalf("the slot went to %s, want %s", name, want)
		}
	}
	g.release()
	if g.free != 1 || len(g.first)+len(g.others) != 0 {
		t.Fatalf("free %d, waiting %d+%d; want 1 free, none waiting", g.free, len(g.first), len(g.others))
	}
}
