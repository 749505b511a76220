package seam

import (
	"context"
	"sync"

	"github.com/moorage/moorage/internal/runtime"
)

// Life is a runtime's open or closed state and the goroutines its Close
// waits for (supervisors, log copiers, watchers). The zero value is open.
type Life struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Check returns ErrRuntimeClosed once l is shut: the "not closed" every
// runtime method asks first.
func (l *Life) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return runtime.ErrRuntimeClosed
	}
	return nil
}

// Go runs fn in a goroutine that Wait waits for; false (fn never runs)
// once l is shut.
func (l *Life) Go(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
	return true
}

// Shut closes l: from now on Check fails and Go starts nothing. It reports
// whether l was open (false: closed before, nothing more to do).
func (l *Life) Shut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	return true
}

// Wait waits until every goroutine Go started has returned.
func (l *Life) Wait() { l.wg.Wait() }

// End is the start of a Close: Shut, then cancel (the runtime's context,
// which the goroutines watch), then Wait. It reports false, doing nothing,
// when l was closed before.
func (l *Life) End(cancel context.CancelFunc) bool {
	if !l.Shut() {
		return false
	}
	cancel()
	l.Wait()
	return true
}

// Stopper is a runtime's Stop, the same on every runtime: the runtime
// embeds it, made by NewStopper in its New.
type Stopper struct {
	ids   *IDLocks
	check func() error
	stop  func(ctx context.Context, id string) error
}

// NewStopper makes the Stop that runs stop (the runtime's own stop of one
// instance) once check (its "not closed") passes, holding id's lock in ids.
func NewStopper(ids *IDLocks, check func() error, stop func(ctx context.Context, id string) error) Stopper {
	return Stopper{ids: ids, check: check, stop: stop}
}

// Stop stops instance id gracefully (its stop signal, then SIGKILL after
// its stop timeout) and returns once it has exited; no restart follows.
// Stopping an exited instance is a no-op. What a runtime does to stop one
// is said at its stop method.
func (s Stopper) Stop(ctx context.Context, id string) error {
	return s.ids.Do(s.check, id, func() error { return s.stop(ctx, id) })
}
