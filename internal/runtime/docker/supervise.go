package docker

import (
	"context"
	"errors"
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
// backoff and reports the crash and the restart.
type supervisor struct {
	id   string // instance id
	cid  string // container id
	ev   runtime.InstanceEvent
	logf *logs.File
	base string // the log file

	stopOnce sync.Once
	stopReq  chan struct{} // closed by requestStop
	done     chan struct{} // closed once the supervisor has ended

	mu         sync.Mutex
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
	started := time.Now()
	if c.State != nil {
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil {
			started = t
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
	if !r.life.Go(func() { r.loop(s, started) }) {
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

// errGone says a supervised container was removed behind moorage's back.
var errGone = errors.New("container removed")

func (r *Runtime) loop(s *supervisor, started time.Time) {
	defer close(s.done)
	defer s.logf.Close()
	defer r.untrack(s)
	var backoff time.Duration
	for {
		logDone := r.followLogs(s)
		code, err := r.waitExit(s)
		if err != nil {
			r.waitLogs(logDone, 5*time.Second)
			if errors.Is(err, errGone) {
				r.publish(s, runtime.EventExit, -1, "the container was removed outside moorage", 0)
			}
			return // closed: the next runtime adopts it
		}
		// The report goes first: the follower is likely done with the last
		// lines already (they stream live), and Docker ends the stream only
		// after its cleanup.
		msg, ranFor := r.exitMessage(s, code, started)
		if s.stopRequested() {
			r.waitLogs(logDone, 5*time.Second)
			r.publish(s, runtime.EventExit, code, msg, 0)
			return
		}
		backoff = seam.Backoff{Min: r.opts.BackoffMin, Max: r.opts.BackoffMax, Reset: r.opts.BackoffReset}.Next(backoff, ranFor)
		s.mu.Lock()
		s.restarting = true
		s.mu.Unlock()
		r.log.Warn("container exited; restarting it", "instance", s.id, "exit", code, "message", msg, "backoff", backoff)
		r.publish(s, runtime.EventCrash, code, msg, backoff)
		wait := time.NewTimer(backoff)
		// The old output is copied before the restart starts a new copier.
		r.waitLogs(logDone, 5*time.Second)
		for {
			select {
			case <-wait.C:
			case <-s.stopReq:
				wait.Stop()
				s.mu.Lock()
				s.restarting = false
				s.mu.Unlock()
				r.publish(s, runtime.EventExit, code, "stopped while waiting to restart", 0)
				return
			case <-r.ctx.Done():
				wait.Stop()
				return
			}
			_, err := r.cli.ContainerStart(r.ctx, s.cid, client.ContainerStartOptions{})
			if err == nil {
				break
			}
			if r.ctx.Err() != nil {
				return
			}
			if isNotFound(err) {
				r.publish(s, runtime.EventExit, -1, "the container was removed outside moorage", 0)
				return
			}
			backoff = min(2*backoff, r.opts.BackoffMax)
			r.log.Warn("restart failed", "instance", s.id, "err", err, "backoff", backoff)
			r.publish(s, runtime.EventCrash, -1, "restart failed: "+err.Error(), backoff)
			wait.Reset(backoff)
		}
		started = time.Now()
		s.mu.Lock()
		s.restarts++
		s.restarting = false
		n := s.restarts
		s.mu.Unlock()
		st := readState(r.statePath(s.id))
		st.Restarts = n
		if err := writeState(r.statePath(s.id), &st); err != nil {
			r.log.Warn("record restart", "instance", s.id, "err", err)
		}
		r.publish(s, runtime.EventRestart, 0, "", 0)
		if s.stopRequested() {
			// Stop came while it was being started: Stop waits for us.
			sctx, cancel := context.WithTimeout(r.ctx, time.Minute)
			_, _ = r.cli.ContainerStop(sctx, s.cid, client.ContainerStopOptions{})
			cancel()
		}
	}
}

// waitExit waits until the container is not running and returns its exit
// code. It returns errGone when the container was removed, and the
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
				return -1, errGone
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

func (r *Runtime) publish(s *supervisor, typ runtime.EventType, code int, msg string, backoff time.Duration) {
	ev := s.ev
	ev.Time = time.Now().UTC()
	ev.Type = typ
	ev.ExitCode = code
	ev.Message = msg
	ev.Restarts = s.restartCount()
	ev.Backoff = backoff
	r.events.Publish(ev)
}
