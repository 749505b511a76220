package seam

import (
	"context"
	"sync"
	"time"
)

// Followers are a runtime's background copies of its instances' output
// into their log files, one per key (an instance, a service): the swarm
// and kubernetes runtimes, whose instances' output comes from the
// cluster's log streams. Each is started once and stopped once it has
// caught up. The zero value is ready to use.
type Followers struct {
	mu sync.Mutex
	m  map[string]*follower
}

type follower struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs fn in one of life's goroutines under key, unless one runs
// already (or life is shut). fn's context is parent's child, cancelled by
// Stop. Once fn returns by itself, key is free for a new one.
func (f *Followers) Start(life *Life, parent context.Context, key string, fn func(ctx context.Context)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[key]; ok {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	fl := &follower{cancel: cancel, done: make(chan struct{})}
	if !life.Go(func() {
		defer close(fl.done)
		defer f.forget(key, fl)
		fn(ctx)
	}) {
		cancel()
		return
	}
	if f.m == nil {
		f.m = map[string]*follower{}
	}
	f.m[key] = fl
}

// forget frees key if fl still holds it.
func (f *Followers) forget(key string, fl *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[key] == fl {
		delete(f.m, key)
	}
}

// Stop ends key's follower: it gives it up to grace to end by itself
// (having copied what the instance printed), then cancels it, and returns
// once it has ended.
func (f *Followers) Stop(key string, grace time.Duration) {
	f.mu.Lock()
	fl := f.m[key]
	delete(f.m, key)
	f.mu.Unlock()
	if fl == nil {
		return
	}
	select {
	case <-fl.done:
	case <-time.After(grace):
	}
	fl.cancel()
	<-fl.done
}
