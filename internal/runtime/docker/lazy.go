package docker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// Lazy is the docker runtime of a server that started while no engine
// answered. It connects (re-adopting the containers, like New) at the
// first operation that needs the engine, a deploy's build for example, or
// when its background retries (Retry) reach it, so starting Docker later
// needs no server restart. Until then it lists no instances (it cannot see
// any) and every operation that needs the engine fails with
// ErrUnavailable, saying why and how to fix it.
type Lazy struct {
	opts   Options
	events *runtime.Broker
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rt        atomic.Pointer[Runtime]
	mu        sync.Mutex // serializes connecting and Close
	closed    bool
	onConnect func() // called once, in its own goroutine, after connecting
}

var (
	_ runtime.Runtime       = (*Lazy)(nil)
	_ runtime.VolumeRemover = (*Lazy)(nil)
	_ runtime.ArtifactSizer = (*Lazy)(nil)
)

// NewLazy returns a docker runtime that connects with opts when first
// needed.
func NewLazy(opts Options) *Lazy {
	ctx, cancel := context.WithCancel(context.Background())
	return &Lazy{opts: opts, events: runtime.NewBroker(), ctx: ctx, cancel: cancel}
}

// connect returns the connected runtime, connecting now if need be.
func (l *Lazy) connect(ctx context.Context) (*Runtime, error) {
	if r := l.rt.Load(); r != nil {
		return r, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.rt.Load(); r != nil {
		return r, nil
	}
	if l.closed {
		return nil, runtime.ErrRuntimeClosed
	}
	r, err := New(ctx, l.opts)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: %w", err)
	}
	ch := r.Events(l.ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for ev := range ch {
			l.events.Publish(ev)
		}
	}()
	l.rt.Store(r)
	if l.opts.Logger != nil {
		l.opts.Logger.Info("docker engine reachable: the docker runtime is connected")
	}
	if fn := l.onConnect; fn != nil {
		// Not under the caller's feet: the caller may be an operation
		// holding an app's lock that fn needs too.
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			fn()
		}()
	}
	return r, nil
}

// Retry tries to connect in the background, first after first, then at
// doubling intervals up to limit, until it is connected (by this or by an
// operation that needed the engine) or closed. onConnect, if not nil, is
// called once after the connection, whoever made it (at once if it is
// connected already): the server converges the docker apps then, which it
// could not do at its start. Call it once.
func (l *Lazy) Retry(first, limit time.Duration, onConnect func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.rt.Load() != nil {
		// Connected already (by an operation): what it missed runs now.
		if onConnect != nil {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				onConnect()
			}()
		}
		return
	}
	l.onConnect = onConnect
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
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
			if l.opts.Logger != nil {
				l.opts.Logger.Debug("docker engine still not reachable", "err", err, "next_try", wait)
			}
			t.Reset(wait)
		}
	}()
}

// Connect connects now if it is not connected yet: an operation that is
// about to plan from what runs connects first, so that it sees it.
func (l *Lazy) Connect(ctx context.Context) error {
	_, err := l.connect(ctx)
	return err
}

// Connected reports whether the engine was reached.
func (l *Lazy) Connected() bool { return l.rt.Load() != nil }

// Name returns "docker".
func (l *Lazy) Name() string { return Name }

// Events streams the connected runtime's events, from whenever it
// connects, until ctx is done or l is closed.
func (l *Lazy) Events(ctx context.Context) <-chan runtime.InstanceEvent {
	return l.events.Subscribe(ctx)
}

// Close closes the connected runtime, if any. Containers keep running.
func (l *Lazy) Close() error {
	l.mu.Lock()
	l.closed = true
	r := l.rt.Load()
	l.mu.Unlock()
	var err error
	if r != nil {
		err = r.Close()
	}
	l.cancel()
	l.wg.Wait()
	l.events.Close()
	return err
}

// What reads what the runtime saw does not connect: before the engine
// answers there is nothing to see.

// List lists no instance until the engine answered.
func (l *Lazy) List(ctx context.Context, f runtime.Filter) ([]runtime.Instance, error) {
	if r := l.rt.Load(); r != nil {
		return r.List(ctx, f)
	}
	return []runtime.Instance{}, nil
}

// Logs reads instance logs once connected (ErrNotFound before).
func (l *Lazy) Logs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	if r := l.rt.Load(); r != nil {
		return r.Logs(ctx, id, opts, fn)
	}
	return fmt.Errorf("logs of %s: %w", id, runtime.ErrNotFound)
}

// PruneLogs prunes once connected (nothing before).
func (l *Lazy) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	if r := l.rt.Load(); r != nil {
		return r.PruneLogs(ctx, app, ret)
	}
	return 0, nil
}

// Everything else connects first.

// call runs fn on the connected runtime, connecting first; fail is what it
// returns with the error when it cannot connect.
func call[T any](l *Lazy, ctx context.Context, fail T, fn func(*Runtime) (T, error)) (T, error) {
	r, err := l.connect(ctx)
	if err != nil {
		return fail, err
	}
	return fn(r)
}

// do is call for the methods that return only an error.
func do(l *Lazy, ctx context.Context, fn func(*Runtime) error) error {
	_, err := call(l, ctx, struct{}{}, func(r *Runtime) (struct{}, error) { return struct{}{}, fn(r) })
	return err
}

func (l *Lazy) Build(ctx context.Context, req runtime.BuildRequest) (runtime.Artifact, error) {
	return call(l, ctx, runtime.Artifact{}, func(r *Runtime) (runtime.Artifact, error) { return r.Build(ctx, req) })
}

func (l *Lazy) RemoveArtifact(ctx context.Context, a runtime.Artifact) error {
	return do(l, ctx, func(r *Runtime) error { return r.RemoveArtifact(ctx, a) })
}

func (l *Lazy) ArtifactExists(ctx context.Context, a runtime.Artifact) (bool, error) {
	return call(l, ctx, false, func(r *Runtime) (bool, error) { return r.ArtifactExists(ctx, a) })
}

func (l *Lazy) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	return call(l, ctx, 0, func(r *Runtime) (int64, error) { return r.ArtifactSize(ctx, a) })
}

func (l *Lazy) EnsureVolume(ctx context.Context, app, name string) error {
	return do(l, ctx, func(r *Runtime) error { return r.EnsureVolume(ctx, app, name) })
}

func (l *Lazy) VolumePath(ctx context.Context, app, name string) (string, error) {
	return call(l, ctx, "", func(r *Runtime) (string, error) { return r.VolumePath(ctx, app, name) })
}

func (l *Lazy) RemoveVolume(ctx context.Context, app, name string) error {
	return do(l, ctx, func(r *Runtime) error { return r.RemoveVolume(ctx, app, name) })
}

func (l *Lazy) EnsureNetwork(ctx context.Context, app string) error {
	return do(l, ctx, func(r *Runtime) error { return r.EnsureNetwork(ctx, app) })
}

func (l *Lazy) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	return call(l, ctx, runtime.Instance{}, func(r *Runtime) (runtime.Instance, error) { return r.Start(ctx, s) })
}

func (l *Lazy) Stop(ctx context.Context, id string) error {
	return do(l, ctx, func(r *Runtime) error { return r.Stop(ctx, id) })
}

func (l *Lazy) Remove(ctx context.Context, id string) error {
	return do(l, ctx, func(r *Runtime) error { return r.Remove(ctx, id) })
}

func (l *Lazy) Exec(ctx context.Context, id string, e runtime.ExecSpec) (int, error) {
	return call(l, ctx, -1, func(r *Runtime) (int, error) { return r.Exec(ctx, id, e) })
}

func (l *Lazy) Pause(ctx context.Context, id string) error {
	return do(l, ctx, func(r *Runtime) error { return r.Pause(ctx, id) })
}

func (l *Lazy) Resume(ctx context.Context, id string) error {
	return do(l, ctx, func(r *Runtime) error { return r.Resume(ctx, id) })
}

func (l *Lazy) Run(ctx context.Context, s runtime.RunSpec) (int, error) {
	return call(l, ctx, -1, func(r *Runtime) (int, error) { return r.Run(ctx, s) })
}
