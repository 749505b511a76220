package docker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// supervisor watches one container: it copies its output into the log,
// and when the container exits without being asked it restarts it after a
// backoff and reports the crash and the restart. What is a crash, the
// backoff, the restart count and what the events say are seam.Supervisor's;
// the supervisor is its seam.Child, a goroutine of the server that waits
// on the engine.
type supervisor struct {
	r    *Runtime
	id   string // instance id
	cid  string // container id
	ev   runtime.InstanceEvent
	logf *logs.File
	base string // the log file

	stopOnce sync.Once
	stopReq  chan struct{} // closed by requestStop
	done     chan struct{} // closed once the supervisor has ended

	// Used by the loop's goroutine alone.
	started time.Time       // when the container last started: how long it ran when Docker does not say
	logDone <-chan struct{} // closed once the running container's output is copied

	mu         sync.Mutex // restarts and restarting, which List reads
	restarts   int
	restarting bool // exited, waiting for its backoff
}

func (s *supervisor) requestStop() { s.stopOnce.Do(func() { close(s.stopReq) }) }

func (s *supervisor) stopRequested() bool {
	select {
	case <-s.stopReq:
		return true
	default:
		return false
	}
}

func (s *supervisor) isRestarting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarting
}

func (s *supervisor) restartCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

func (r *Runtime) supervisorOf(id string) *supervisor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sups[id]
}

// supervise starts supervising a running container. It takes lf over.
func (r *Runtime) supervise(id string, c *container.InspectResponse, lf *logs.File, restarts int) {
	l := c.Config.Labels
	s := &supervisor{
		r:    r,
		id:   id,
		cid:  c.ID,
		logf: lf,
		base: seam.LogPath(r.opts.DataDir, l[containers.LabelApp], id),
		ev: runtime.InstanceEvent{
			Instance: id, App: l[containers.LabelApp], Service: l[containers.LabelService], Release: l[containers.LabelRelease],
			Kind: runtime.Kind(l[containers.LabelKind]),
		},
		stopReq:  make(chan struct{}),
		done:     make(chan struct{}),
		restarts: restarts,
	}
	s.started = time.Now()
	if c.State != nil {
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil {
			s.started = t
		}
	}
	r.mu.Lock()
	if old := r.sups[id]; old != nil {
		select {
		case <-old.done:
		default:
			// Already supervised (adopted twice): keep the first.
			r.mu.Unlock()
			lf.Close()
			return
		}
	}
	r.sups[id] = s
	r.mu.Unlock()
	if !r.life.Go(func() { r.loop(s) }) {
		lf.Close()
		close(s.done)
	}
}

func (r *Runtime) untrack(s *supervisor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sups[s.id] == s {
		delete(r.sups, s.id)
	}
}

// gone is how a supervised container that was removed behind moorage's
// back ends: its last exit event says so.
var gone = &seam.Gone{Message: "the container was removed outside moorage"}

func (r *Runtime) loop(s *supervisor) {
	defer close(s.done)
	defer s.logf.Close()
	defer r.untrack(s)
	sup := seam.Supervisor{
		Crashes: seam.Crashes{
			Backoff:  seam.Backoff{Min: r.opts.BackoffMin, Max: r.opts.BackoffMax, Reset: r.opts.BackoffReset},
			Restarts: s.restartCount(),
		},
		Stop: s.stopReq,
		Done: r.ctx.Done(),
	}
	sup.Run(s)
}

// Wait is seam.Child's: it copies the running container's output while it
// waits for its exit. Stop (the runtime's) stops the container itself.
func (s *supervisor) Wait() (seam.Exit, error) {
	r := s.r
	s.logDone = r.followLogs(s)
	code, err := r.waitExit(s)
	if err != nil {
		r.waitLogs(s.logDone, 5*time.Second)
		return seam.Exit{}, err // closed: the next runtime adopts it
	}
	msg, ranFor := r.exitMessage(s, code, s.started)
	return seam.Exit{Code: code, Message: msg, RanFor: ranFor}, nil
}

// Start is seam.Child's: the restart after a crash's backoff.
func (s *supervisor) Start() error {
	r := s.r
	if _, err := r.cli.ContainerStart(r.ctx, s.cid, client.ContainerStartOptions{}); err != nil {
		if r.ctx.Err() == nil && isNotFound(err) {
			return gone
		}
		return err
	}
	s.started = time.Now()
	return nil
}

// Report is seam.Child's: it keeps what List reads, records the restart
// count across servers and publishes the event.
func (s *supervisor) Report(st seam.Step) {
	r := s.r
	s.mu.Lock()
	s.restarts = st.Restarts
	s.restarting = st.State == runtime.StateRestarting
	s.mu.Unlock()
	switch st.Type {
	case runtime.EventCrash:
		if st.Err != nil {
			r.log.Warn("restart failed", "instance", s.id, "err", st.Err, "backoff", st.Backoff)
		} else {
			r.log.Warn("container exited; restarting it", "instance", s.id, "exit", st.Code, "message", st.Message, "backoff", st.Backoff)
		}
		// The report goes first: the follower is likely done with the
		// last lines already (they stream live), and Docker ends the
		// stream only after its cleanup. The old output is copied before
		// the restart starts a new copier.
		r.publish(s, st)
		r.waitLogs(s.logDone, 5*time.Second)
	case runtime.EventRestart:
		rs := readState(r.statePath(s.id))
		rs.Restarts = st.Restarts
		if err := writeState(r.statePath(s.id), &rs); err != nil {
			r.log.Warn("record restart", "instance", s.id, "err", err)
		}
		r.publish(s, st)
		if s.stopRequested() {
			// Stop came while it was being started: Stop waits for us.
			sctx, cancel := context.WithTimeout(r.ctx, time.Minute)
			_, _ = r.cli.ContainerStop(sctx, s.cid, client.ContainerStopOptions{})
			cancel()
		}
	case runtime.EventExit:
		// A stopped container's last lines are in its log before Stop
		// returns.
		r.waitLogs(s.logDone, 5*time.Second)
		r.publish(s, st)
	}
}

// waitExit waits until the container is not running and returns its exit
// code. It returns gone when the container was removed, and the
// runtime's context error once it is closed.
func (r *Runtime) waitExit(s *supervisor) (int, error) {
	for {
		res := r.cli.ContainerWait(r.ctx, s.cid, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case w := <-res.Result:
			if w.Error != nil && w.Error.Message != "" {
				r.log.Debug("wait", "instance", s.id, "err", w.Error.Message)
			}
			return int(w.StatusCode), nil
		case err := <-res.Error:
			if r.ctx.Err() != nil {
				return -1, r.ctx.Err()
			}
			if isNotFound(err) {
				return -1, gone
			}
			// The connection broke (engine restart?): look again shortly.
			r.log.Debug("wait for container", "instance", s.id, "err", err)
			select {
			case <-time.After(time.Second):
			case <-r.ctx.Done():
				return -1, r.ctx.Err()
			}
		}
	}
}

// exitMessage describes an exit and says how long the container ran.
func (r *Runtime) exitMessage(s *supervisor, code int, started time.Time) (string, time.Duration) {
	ranFor := time.Since(started)
	msg := fmt.Sprintf("exit status %d", code)
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	c, err := r.cli.ContainerInspect(ctx, s.cid, client.ContainerInspectOptions{})
	if err != nil || c.Container.State == nil {
		return msg, ranFor
	}
	st := c.Container.State
	if a, err1 := time.Parse(time.RFC3339Nano, st.StartedAt); err1 == nil {
		if b, err2 := time.Parse(time.RFC3339Nano, st.FinishedAt); err2 == nil && b.After(a) {
			ranFor = b.Sub(a)
		}
	}
	switch {
	case st.OOMKilled:
		msg = "OOM: killed for using more memory than its limit"
	case code > 128 && code <= 128+64:
		msg = fmt.Sprintf("exit status %d (killed by signal %d)", code, code-128)
	}
	if st.Error != "" {
		msg += ": " + strings.TrimSpace(st.Error)
	}
	return msg, ranFor
}

func (r *Runtime) publish(s *supervisor, st seam.Step) {
	r.events.Publish(st.Event(s.ev))
}
