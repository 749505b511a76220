package seam

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestFollowers: one follower per key; Stop waits for it to catch up or
// cancels it after the grace; a follower that ends by itself frees its key.
func TestFollowers(t *testing.T) {
	var life Life
	var f Followers
	var runs atomic.Int32
	block := func(ctx context.Context) { runs.Add(1); <-ctx.Done() }
	f.Start(&life, context.Background(), "a", block)
	f.Start(&life, context.Background(), "a", block) // already running: nothing
	start := time.Now()
	f.Stop("a", 50*time.Millisecond) // never ends by itself: cancelled after the grace
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("Stop returned after %v, before the grace", d)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d followers ran for one key, want 1", n)
	}

	// One that ends by itself frees its key: the next Start runs again.
	ended := make(chan struct{})
	f.Start(&life, context.Background(), "b", func(context.Context) { close(ended) })
	<-ended
	deadline := time.Now().Add(5 * time.Second)
	for {
		again := make(chan struct{})
		f.Start(&life, context.Background(), "b", func(context.Context) { close(again) })
		select {
		case <-again:
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("a follower that ended kept its key")
			}
			continue
		}
		break
	}
	// Stop of one that already ended, or of no follower, returns at once.
	start = time.Now()
	f.Stop("b", time.Minute)
	f.Stop("none", time.Minute)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Stop of ended followers took %v", d)
	}

	// Once life is shut, nothing starts.
	life.Shut()
	f.Start(&life, context.Background(), "c", func(context.Context) { t.Error("started after Shut") })
	life.Wait()
}
