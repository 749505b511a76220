package seam

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// op is one thing that happens to a supervised child, for the table of
// TestCrashes.
type op func(c *Crashes) Step

func exited(code int, msg string, ran time.Duration, stop bool) op {
	return func(c *Crashes) Step { return c.Exited(Exit{Code: code, Message: msg, RanFor: ran}, stop) }
}

func startFailed(err error) op { return func(c *Crashes) Step { return c.StartFailed(err) } }

var (
	started        op = func(c *Crashes) Step { return c.Started() }
	stoppedWaiting op = func(c *Crashes) Step { return c.StoppedWaiting() }
)

func crash(code int, msg string, restarts int, backoff time.Duration) Step {
	return Step{Type: runtime.EventCrash, State: runtime.StateRestarting, Code: code, Message: msg, Restarts: restarts, Backoff: backoff}
}

func restart(restarts int) Step {
	return Step{Type: runtime.EventRestart, State: runtime.StateRunning, Restarts: restarts}
}

func exit(code int, msg string, restarts int) Step {
	return Step{Type: runtime.EventExit, State: runtime.StateExited, Code: code, Message: msg, Restarts: restarts}
}

func TestCrashes(t *testing.T) {
	boom := errors.New("boom")
	failed := crash(-1, "restart failed: boom", 0, 0)
	failed.Err = boom
	s := time.Second
	tests := []struct {
		name     string
		restarts int // recorded before (an adopted instance)
		ops      []op
		want     []Step
	}{
		{"a requested stop is an exit, not a crash", 0,
			[]op{exited(143, "exit status 143", time.Hour, true)},
			[]Step{exit(143, "exit status 143", 0)}},
		{"a crash waits Min, then doubles up to Max", 0,
			[]op{exited(1, "exit status 1", 0, false), started,
				exited(1, "exit status 1", s, false), started,
				exited(1, "exit status 1", s, false), started,
				exited(1, "exit status 1", s, false)},
			[]Step{crash(1, "exit status 1", 0, s), restart(1),
				crash(1, "exit status 1", 1, 2*s), restart(2),
				crash(1, "exit status 1", 2, 3*s), restart(3),
				crash(1, "exit status 1", 3, 3*s)}},
		{"a run of Reset resets the backoff, not the count", 0,
			[]op{exited(2, "exit status 2", 0, false), started,
				exited(2, "exit status 2", 0, false), started,
				exited(2, "exit status 2", 10*s, false)},
			[]Step{crash(2, "exit status 2", 0, s), restart(1),
				crash(2, "exit status 2", 1, 2*s), restart(2),
				crash(2, "exit status 2", 2, s)}},
		{"a failed restart is a crash of its own that doubles the wait", 0,
			[]op{exited(1, "exit status 1", 0, false), startFailed(boom), startFailed(boom), started},
			[]Step{crash(1, "exit status 1", 0, s),
				withBackoff(failed, 2*s), withBackoff(failed, 3*s), restart(1)}},
		{"a stop during the backoff says so, with the last exit's code", 0,
			[]op{exited(137, "exit status 137 (killed by signal 9)", 0, false), startFailed(boom), stoppedWaiting},
			[]Step{crash(137, "exit status 137 (killed by signal 9)", 0, s), withBackoff(failed, 2*s),
				exit(137, "stopped while waiting to restart", 0)}},
		{"an adopted instance counts on from what it had", 4,
			[]op{exited(1, "exit status 1", 0, false), started, exited(0, "exit status 0", 0, true)},
			[]Step{crash(1, "exit status 1", 4, s), restart(5), exit(0, "exit status 0", 5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Crashes{Backoff: Backoff{Min: s, Max: 3 * s, Reset: 10 * s}, Restarts: tt.restarts}
			var got []Step
			for _, o := range tt.ops {
				got = append(got, o(&c))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("steps\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	c := Crashes{}
	if st := c.Lost(&Gone{Message: "removed"}); st != exit(-1, "removed", 0) {
		t.Fatalf("lost: %+v", st)
	}
}

func withBackoff(s Step, d time.Duration) Step {
	s.Backoff = d
	return s
}

// child is a Child whose exits and start errors are scripted.
type child struct {
	mu     sync.Mutex
	exits  []any // Exit or error, one per Wait
	starts []error
	steps  []Step
	onWait func()
}

func (c *child) Wait() (Exit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onWait != nil {
		c.onWait()
	}
	e := c.exits[0]
	c.exits = c.exits[1:]
	if err, ok := e.(error); ok {
		return Exit{}, err
	}
	return e.(Exit), nil
}

func (c *child) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.starts[0]
	c.starts = c.starts[1:]
	return err
}

func (c *child) Report(s Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, s)
}

func (c *child) types() []runtime.EventType {
	var out []runtime.EventType
	for _, s := range c.steps {
		out = append(out, s.Type)
	}
	return out
}

func TestSupervisorRun(t *testing.T) {
	ms := time.Millisecond
	b := Backoff{Min: ms, Max: 4 * ms, Reset: time.Hour}
	crash, restart, exit := runtime.EventCrash, runtime.EventRestart, runtime.EventExit

	t.Run("crash, failed restart, restart, then a stop", func(t *testing.T) {
		stop := make(chan struct{})
		c := &child{
			exits:  []any{Exit{Code: 1, Message: "exit status 1"}, Exit{Code: 143, Message: "exit status 143"}},
			starts: []error{errors.New("no"), nil},
		}
		// The second Wait is the restarted child, stopped while it runs.
		c.onWait = func() {
			if len(c.exits) == 1 {
				close(stop)
			}
		}
		(&Supervisor{Crashes: Crashes{Backoff: b}, Stop: stop}).Run(c)
		if want := []runtime.EventType{crash, crash, restart, exit}; !reflect.DeepEqual(c.types(), want) {
			t.Fatalf("events %v, want %v", c.types(), want)
		}
		if last := c.steps[3]; last.Code != 143 || last.Restarts != 1 {
			t.Fatalf("last step %+v", last)
		}
	})

	t.Run("a stop during the backoff", func(t *testing.T) {
		stop := make(chan struct{})
		c := &child{exits: []any{Exit{Code: 3}}}
		// The stop arrives after the exit was taken for a crash: a long
		// backoff, so that only the stop can end the wait.
		s := &Supervisor{Crashes: Crashes{Backoff: Backoff{Min: time.Hour, Max: time.Hour}}, Stop: stop}
		done := make(chan struct{})
		go func() { s.Run(&stopAfterCrash{c, stop}); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not end on the stop")
		}
		if want := []runtime.EventType{crash, exit}; !reflect.DeepEqual(c.types(), want) {
			t.Fatalf("events %v, want %v", c.types(), want)
		}
		if c.steps[1].Message != "stopped while waiting to restart" || c.steps[1].Code != 3 {
			t.Fatalf("exit %+v", c.steps[1])
		}
	})

	t.Run("gone while waiting and while restarting", func(t *testing.T) {
		for _, c := range []*child{
			{exits: []any{&Gone{Message: "removed"}}},
			{exits: []any{Exit{Code: 1}}, starts: []error{&Gone{Message: "removed"}}},
		} {
			(&Supervisor{Crashes: Crashes{Backoff: b}, Stop: make(chan struct{})}).Run(c)
			last := c.steps[len(c.steps)-1]
			if last.Type != exit || last.Code != -1 || last.Message != "removed" {
				t.Fatalf("steps %+v", c.steps)
			}
		}
	})

	t.Run("the runtime closing ends it silently", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		c := &child{exits: []any{errors.New("closed")}}
		(&Supervisor{Crashes: Crashes{Backoff: b}, Done: done}).Run(c)
		c2 := &child{exits: []any{Exit{Code: 1}}}
		(&Supervisor{Crashes: Crashes{Backoff: Backoff{Min: time.Hour, Max: time.Hour}}, Done: done}).Run(c2)
		if len(c.steps) != 0 || !reflect.DeepEqual(c2.types(), []runtime.EventType{crash}) {
			t.Fatalf("steps %+v, %+v", c.steps, c2.steps)
		}
	})
}

// stopAfterCrash closes stop once the crash is reported, as a Stop that
// comes during the backoff.
type stopAfterCrash struct {
	*child
	stop chan struct{}
}

func (s *stopAfterCrash) Report(st Step) {
	s.child.Report(st)
	if st.Type == runtime.EventCrash {
		close(s.stop)
	}
}

// TestStepEvent: a step's event keeps the instance's identity from the
// base and takes everything else from the step.
func TestStepEvent(t *testing.T) {
	base := runtime.InstanceEvent{Instance: "shop-web-v3-1", App: "shop", Service: "web", Release: "v3", Kind: runtime.KindService, Message: "old"}
	st := Step{Type: runtime.EventCrash, Code: 2, Message: "exit status 2", Restarts: 4, Backoff: 8 * time.Second}
	ev := st.Event(base)
	if ev.Instance != base.Instance || ev.App != "shop" || ev.Service != "web" || ev.Release != "v3" || ev.Kind != runtime.KindService {
		t.Errorf("identity lost: %+v", ev)
	}
	if ev.Type != runtime.EventCrash || ev.ExitCode != 2 || ev.Message != "exit status 2" || ev.Restarts != 4 || ev.Backoff != 8*time.Second {
		t.Errorf("step not carried: %+v", ev)
	}
	if ev.Time.IsZero() || ev.Time.Location() != time.UTC {
		t.Errorf("time %v, want now in UTC", ev.Time)
	}
}
