package seam

import (
	"errors"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// Supervision of one instance, written once for the runtimes that keep
// their instances running themselves: the process runtime (in its shim, a
// process of its own that outlives the server) and the docker runtime (a
// goroutine of the server per container). What differs between them is
// only how a child is started, waited for and reported (Child); whether an
// exit is a crash, how long to wait before the restart, how restarts are
// counted and what each event says are decided here (Crashes), so the two
// cannot drift. Swarm and Kubernetes do not use it: their cluster
// supervises.

// Backoff is the crash accounting of a supervisor: how long to wait before
// restarting an instance that crashed.
type Backoff struct {
	Min, Max, Reset time.Duration
}

// Next is the delay after a crash: Min after the first crash, or once the
// instance stayed up Reset; else twice the previous delay, at most Max.
// prev is the previous delay (0: none yet), ranFor how long it ran.
func (b Backoff) Next(prev, ranFor time.Duration) time.Duration {
	if prev == 0 || ranFor >= b.Reset {
		return b.Min
	}
	return min(2*prev, b.Max)
}

// Exit is how a supervised child ended, as its runtime describes it.
type Exit struct {
	Code    int
	Message string        // "exit status 2", "killed by SIGKILL", "OOM: ..."
	RanFor  time.Duration // how long it ran: a long run resets the backoff
}

// Step is what supervision decided after something happened to the child:
// the event to report and the state the instance is now in.
type Step struct {
	Type     runtime.EventType // crash, restart or exit
	State    runtime.State     // restarting after a crash, running after a restart, exited
	Code     int               // the exit code (0 for a restart)
	Message  string            // "" for a restart
	Restarts int               // restarts so far, this one included
	Backoff  time.Duration     // the wait before the restart (crash only)
	Err      error             // the failed start of a "restart failed" crash
}

// Event is the step as the instance's event: base (the instance's app,
// service, release, index, id) with the step's type, code, message,
// restarts and backoff, at now.
func (s Step) Event(base runtime.InstanceEvent) runtime.InstanceEvent {
	ev := base
	ev.Time = time.Now().UTC()
	ev.Type = s.Type
	ev.ExitCode = s.Code
	ev.Message = s.Message
	ev.Restarts = s.Restarts
	ev.Backoff = s.Backoff
	return ev
}

// Crashes is the crash accounting of one supervised instance: each method
// takes what happened and returns the step to report. It is pure (no
// clock, no I/O), so its table tests say the whole policy.
type Crashes struct {
	Backoff  Backoff
	Restarts int // restarts so far; a runtime that adopts an instance sets what it had recorded

	delay time.Duration // the last backoff (0: no crash yet)
	last  Exit          // the child's last exit
}

// Exited decides about an exit of the child: the exit a stop asked for
// ends supervision (EventExit); any other is a crash, restarted after the
// backoff (EventCrash).
func (c *Crashes) Exited(e Exit, stopRequested bool) Step {
	c.last = e
	if stopRequested {
		return c.step(runtime.EventExit, runtime.StateExited, e.Code, e.Message, 0)
	}
	c.delay = c.Backoff.Next(c.delay, e.RanFor)
	return c.step(runtime.EventCrash, runtime.StateRestarting, e.Code, e.Message, c.delay)
}

// StartFailed decides about a restart that could not start the child: a
// crash of its own (code -1), retried after twice the last wait, at most
// Max.
func (c *Crashes) StartFailed(err error) Step {
	c.delay = min(2*c.delay, c.Backoff.Max)
	s := c.step(runtime.EventCrash, runtime.StateRestarting, -1, "restart failed: "+err.Error(), c.delay)
	s.Err = err
	return s
}

// Started counts a restart that started the child.
func (c *Crashes) Started() Step {
	c.Restarts++
	return c.step(runtime.EventRestart, runtime.StateRunning, 0, "", 0)
}

// StoppedWaiting ends supervision when a stop comes during a backoff: the
// child is not running, so there is nothing to stop. The code is that of
// the child's last exit.
func (c *Crashes) StoppedWaiting() Step {
	return c.step(runtime.EventExit, runtime.StateExited, c.last.Code, "stopped while waiting to restart", 0)
}

// Lost ends supervision when the child cannot be waited for or started
// any more (Gone: removed behind the runtime's back).
func (c *Crashes) Lost(g *Gone) Step {
	return c.step(runtime.EventExit, runtime.StateExited, -1, g.Message, 0)
}

func (c *Crashes) step(typ runtime.EventType, st runtime.State, code int, msg string, backoff time.Duration) Step {
	return Step{Type: typ, State: st, Code: code, Message: msg, Restarts: c.Restarts, Backoff: backoff}
}

// Gone is the error of a Child's Wait or Start when the child no longer
// exists (a container removed outside moorage): supervision ends with an
// exit event saying Message. Any other error of Wait ends it silently (the
// runtime is closing; the next one adopts the child).
type Gone struct{ Message string }

func (g *Gone) Error() string { return g.Message }

// Child is what a runtime implements to be supervised: the mechanism.
type Child interface {
	// Wait blocks until the running child exits and describes the exit.
	// It also carries out a stop: once Supervisor.Stop is closed, the
	// runtime makes the child exit (or, as docker's Stop does, already
	// has).
	Wait() (Exit, error)
	// Start starts the child again after a crash's backoff.
	Start() error
	// Report records and publishes a step (state, events, logs). It is
	// called from Run's goroutine, in order.
	Report(Step)
}

// Supervisor keeps one child running: Run waits for each exit, and
// restarts the child after a crash, until a stop or the runtime's end.
type Supervisor struct {
	Crashes
	Stop <-chan struct{} // closed when a stop is requested
	Done <-chan struct{} // closed when the runtime closes: Run ends without an event (nil: never)
}

// Run supervises c until a requested stop ends it (its last step an
// EventExit), the child is gone, or Done is closed. The child is running
// when it is called.
func (s *Supervisor) Run(c Child) {
	for {
		e, err := c.Wait()
		if err != nil {
			s.lost(c, err)
			return
		}
		step := s.Exited(e, closed(s.Stop))
		if step.Type == runtime.EventExit {
			c.Report(step)
			return
		}
		// The backoff runs from the exit: what Report does (docker waits
		// for the last lines of the log) is not added to it.
		wait := time.NewTimer(step.Backoff)
		c.Report(step)
		for {
			select {
			case <-wait.C:
			case <-s.Stop:
				wait.Stop()
				c.Report(s.StoppedWaiting())
				return
			case <-s.Done:
				wait.Stop()
				return
			}
			err := c.Start()
			if err == nil {
				break
			}
			if closed(s.Done) {
				return
			}
			if s.lost(c, err) {
				return
			}
			step := s.StartFailed(err)
			c.Report(step)
			wait.Reset(step.Backoff)
		}
		c.Report(s.Started())
	}
}

// lost reports the end of a child that is gone, and says whether it was.
func (s *Supervisor) lost(c Child, err error) bool {
	var g *Gone
	if !errors.As(err, &g) {
		return false
	}
	c.Report(s.Lost(g))
	return true
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
