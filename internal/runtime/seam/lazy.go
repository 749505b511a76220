package seam

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// Lazy is a runtime R of a server that started while R's engine did not
// answer (Docker not started yet, a swarm manager down). It connects
// (New, which re-adopts what runs) at the first operation that needs the
// engine, a deploy's build for example, or when its background retries
// (Retry) reach it, so that the engine coming back later needs no server
// restart. Until then it lists no instances (it cannot see any) and every
// operation that needs the engine fails with New's error, which says why
// and how to fix it.
//
// A runtime with more than runtime.Runtime (a VolumeRemover, say) wraps
// Lazy in a type of its own that adds those methods with Call and Do, so
// that what the engine asks of it by type assertion stays true.
type Lazy[R runtime.Runtime] struct {
	name   string
	dial   func(context.Context) (R, error)
	log    *slog.Logger
	events *runtime.Broker
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rt        atomic.Pointer[R]
	mu        sync.Mutex // serializes connecting and Close
	closed    bool
	onConnect func() // called once, in its own goroutine, after connecting
}

// NewLazy returns the runtime named name that connects with dial when
// first needed. log may be nil.
func NewLazy[R runtime.Runtime](name string, dial func(context.Context) (R, error), log *slog.Logger) *Lazy[R] {
	ctx, cancel := context.WithCancel(context.Background())
	return &Lazy[R]{name: name, dial: dial, log: log, events: runtime.NewBroker(), ctx: ctx, cancel: cancel}
}

// connect returns the connected runtime, connecting now if need be.
func (l *Lazy[R]) connect(ctx context.Context) (R, error) {
	if r := l.rt.Load(); r != nil {
		return *r, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.rt.Load(); r != nil {
		return *r, nil
	}
	var zero R
	if l.closed {
		return zero, runtime.ErrRuntimeClosed
	}
	r, err := l.dial(ctx)
	if err != nil {
		return zero, fmt.Errorf("%s runtime: %w", l.name, err)
	}
	ch := r.Events(l.ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for ev := range ch {
			l.events.Publish(ev)
		}
	}()
	l.rt.Store(&r)
	if l.log != nil {
		l.log.Info("engine reachable: the runtime is connected")
	}
	if fn := l.onConnect; fn != nil {
		// Not under the caller's feet: the caller may be an operation
		// holding an app's lock that fn needs too.
		l.goRun(fn)
	}
	return r, nil
}

func (l *Lazy[R]) goRun(fn func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
}

// Retry tries to connect in the background, first after first, then at
// doubling intervals up to limit, until it is connected (by this or by an
// operation that needed the engine) or closed. onConnect, if not nil, is
// called once after the connection, whoever made it (at once if it is
// connected already): the server converges the runtime's apps then, which
// it could not do at its start. Call it once.
func (l *Lazy[R]) Retry(first, limit time.Duration, onConnect func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.rt.Load() != nil {
		// Connected already (by an operation): what it missed runs now.
		if onConnect != nil {
			l.goRun(onConnect)
		}
		return
	}
	l.onConnect = onConnect
	l.goRun(func() {
		wait := first
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-l.ctx.Done():
				return
			case <-t.C:
			}
			if l.Connected() {
				return
			}
			ctx, cancel := context.WithTimeout(l.ctx, 15*time.Second)
			_, err := l.connect(ctx)
			cancel()
			if err == nil {
				return
			}
			wait = min(2*wait, limit)
			if l.log != nil {
				l.log.Debug("engine still not reachable", "err", err, "next_try", wait)
			}
			t.Reset(wait)
		}
	})
}

// Connect connects now if it is not connected yet: an operation that is
// about to plan from what runs connects first, so that it sees it.
func (l *Lazy[R]) Connect(ctx context.Context) error {
	_, err := l.connect(ctx)
	return err
}

// Connected reports whether the engine was reached.
func (l *Lazy[R]) Connected() bool { return l.rt.Load() != nil }

// Name returns the runtime's name.
func (l *Lazy[R]) Name() string { return l.name }

// Events streams the connected runtime's events, from whenever it
// connects, until ctx is done or l is closed.
func (l *Lazy[R]) Events(ctx context.Context) <-chan runtime.InstanceEvent {
	return l.events.Subscribe(ctx)
}

// Close closes the connected runtime, if any. Instances keep running.
func (l *Lazy[R]) Close() error {
	l.mu.Lock()
	l.closed = true
	r := l.rt.Load()
	l.mu.Unlock()
	var err error
	if r != nil {
		err = (*r).Close()
	}
	l.cancel()
	l.wg.Wait()
	l.events.Close()
	return err
}

// What reads what the runtime saw does not connect: before the engine
// answers there is nothing to see.

// List lists no instance until the engine answered.
func (l *Lazy[R]) List(ctx context.Context, f runtime.Filter) ([]runtime.Instance, error) {
	if r := l.rt.Load(); r != nil {
		return (*r).List(ctx, f)
	}
	return []runtime.Instance{}, nil
}

// Logs reads instance logs once connected (ErrNotFound before).
func (l *Lazy[R]) Logs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	if r := l.rt.Load(); r != nil {
		return (*r).Logs(ctx, id, opts, fn)
	}
	return fmt.Errorf("logs of %s: %w", id, runtime.ErrNotFound)
}

// PruneLogs prunes once connected (nothing before).
func (l *Lazy[R]) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	if r := l.rt.Load(); r != nil {
		return (*r).PruneLogs(ctx, app, ret)
	}
	return 0, nil
}

// Everything else connects first.

// Call runs fn on l's connected runtime, connecting first; fail is what it
// returns with the error when it cannot connect.
func Call[R runtime.Runtime, T any](l *Lazy[R], ctx context.Context, fail T, fn func(R) (T, error)) (T, error) {
	r, err := l.connect(ctx)
	if err != nil {
		return fail, err
	}
	return fn(r)
}

// Do is Call for the methods that return only an error.
func Do[R runtime.Runtime](l *Lazy[R], ctx context.Context, fn func(R) error) error {
	r, err := l.connect(ctx)
	if err != nil {
		return err
	}
	return fn(r)
}

func (l *Lazy[R]) Build(ctx context.Context, req runtime.BuildRequest) (runtime.Artifact, error) {
	return Call(l, ctx, runtime.Artifact{}, func(r R) (runtime.Artifact, error) { return r.Build(ctx, req) })
}

func (l *Lazy[R]) RemoveArtifact(ctx context.Context, a runtime.Artifact) error {
	return Do(l, ctx, func(r R) error { return r.RemoveArtifact(ctx, a) })
}

func (l *Lazy[R]) ArtifactExists(ctx context.Context, a runtime.Artifact) (bool, error) {
	return Call(l, ctx, false, func(r R) (bool, error) { return r.ArtifactExists(ctx, a) })
}

func (l *Lazy[R]) EnsureVolume(ctx context.Context, app, name string) error {
	return Do(l, ctx, func(r R) error { return r.EnsureVolume(ctx, app, name) })
}

func (l *Lazy[R]) VolumePath(ctx context.Context, app, name string) (string, error) {
	return Call(l, ctx, "", func(r R) (string, error) { return r.VolumePath(ctx, app, name) })
}

func (l *Lazy[R]) EnsureNetwork(ctx context.Context, app string) error {
	return Do(l, ctx, func(r R) error { return r.EnsureNetwork(ctx, app) })
}

func (l *Lazy[R]) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	return Call(l, ctx, runtime.Instance{}, func(r R) (runtime.Instance, error) { return r.Start(ctx, s) })
}

func (l *Lazy[R]) Stop(ctx context.Context, id string) error {
	return Do(l, ctx, func(r R) error { return r.Stop(ctx, id) })
}

func (l *Lazy[R]) Remove(ctx context.Context, id string) error {
	return Do(l, ctx, func(r R) error { return r.Remove(ctx, id) })
}

func (l *Lazy[R]) Exec(ctx context.Context, id string, e runtime.ExecSpec) (int, error) {
	return Call(l, ctx, -1, func(r R) (int, error) { return r.Exec(ctx, id, e) })
}

func (l *Lazy[R]) Pause(ctx context.Context, id string) error {
	return Do(l, ctx, func(r R) error { return r.Pause(ctx, id) })
}

func (l *Lazy[R]) Resume(ctx context.Context, id string) error {
	return Do(l, ctx, func(r R) error { return r.Resume(ctx, id) })
}

func (l *Lazy[R]) Run(ctx context.Context, s runtime.RunSpec) (int, error) {
	return Call(l, ctx, -1, func(r R) (int, error) { return r.Run(ctx, s) })
}

var _ runtime.Runtime = (*Lazy[runtime.Runtime])(nil)
