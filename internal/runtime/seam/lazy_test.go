package seam

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// fakeRT is the part of a runtime Lazy's test uses; any other method
// panics (the embedded nil interface).
type fakeRT struct {
	runtime.Runtime
	events chan runtime.InstanceEvent
	closed atomic.Bool
}

func (f *fakeRT) Events(ctx context.Context) <-chan runtime.InstanceEvent { return f.events }
func (f *fakeRT) List(ctx context.Context, _ runtime.Filter) ([]runtime.Instance, error) {
	return []runtime.Instance{{ID: "a-web-v1-1"}}, nil
}
func (f *fakeRT) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	return runtime.Instance{ID: s.ID()}, nil
}
func (f *fakeRT) Close() error {
	f.closed.Store(true)
	close(f.events)
	return nil
}

// Lazy answers "nothing yet" and fails with its dial's error while the
// engine does not answer, connects on the first operation that needs it or
// by its retries once the engine answers, calls the server's hook once,
// forwards the runtime's events, and closes it.
func TestLazy(t *testing.T) {
	errDown := errors.New("engine down: start it")
	var up atomic.Bool
	var dials atomic.Int32
	rt := &fakeRT{events: make(chan runtime.InstanceEvent, 1)}
	l := NewLazy("fake", func(ctx context.Context) (*fakeRT, error) {
		dials.Add(1)
		if !up.Load() {
			return nil, errDown
		}
		return rt, nil
	}, nil)
	ctx := context.Background()
	if ins, err := l.List(ctx, runtime.Filter{}); err != nil || len(ins) != 0 {
		t.Fatalf("List before connecting: %v %v, want nothing", ins, err)
	}
	spec := runtime.InstanceSpec{App: "a", Service: "web", Release: "v1", Index: 1}
	if _, err := l.Start(ctx, spec); !errors.Is(err, errDown) || err.Error() != "fake runtime: engine down: start it" {
		t.Fatalf("Start while down: %v, want the dial's error named by the runtime", err)
	}
	events := l.Events(ctx)
	var hooks atomic.Int32
	connected := make(chan struct{})
	l.Retry(time.Millisecond, 5*time.Millisecond, func() {
		if hooks.Add(1) == 1 {
			close(connected)
		}
	})
	up.Store(true)
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("the retries did not connect once the engine answered")
	}
	if !l.Connected() {
		t.Fatal("the hook ran before Connected")
	}
	n := dials.Load()
	if in, err := l.Start(ctx, spec); err != nil || in.ID != spec.ID() {
		t.Fatalf("Start once connected: %+v %v", in, err)
	}
	if ins, _ := l.List(ctx, runtime.Filter{}); len(ins) != 1 {
		t.Fatalf("List once connected: %+v", ins)
	}
	if dials.Load() != n {
		t.Fatal("a connected Lazy dialled again")
	}
	rt.events <- runtime.InstanceEvent{Instance: "a-web-v1-1", Type: runtime.EventCrash}
	select {
	case ev := <-events:
		if ev.Instance != "a-web-v1-1" {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the runtime's event did not reach Lazy's subscriber")
	}
	l.Retry(time.Millisecond, time.Millisecond, func() { hooks.Add(1) }) // connected: runs at once
	if err := l.Close(); err != nil || !rt.closed.Load() {
		t.Fatalf("Close: %v, runtime closed %v", err, rt.closed.Load())
	}
	if n := hooks.Load(); n != 2 {
		t.Fatalf("hooks ran %d times, want once per Retry", n)
	}
	l2 := NewLazy("fake", func(ctx context.Context) (*fakeRT, error) { return rt, nil }, nil)
	l2.Close()
	if err := l2.Connect(ctx); !errors.Is(err, runtime.ErrRuntimeClosed) {
		t.Fatalf("Connect after Close: %v, want ErrRuntimeClosed", err)
	}
}
