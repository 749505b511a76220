//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// load reads an instance's record and state. st is nil when the shim has
// not written a state yet.
func (r *Runtime) load(id string) (*record, *shimState, error) {
	if err := seam.ValidName("instance", id); err != nil {
		return nil, nil, fmt.Errorf("instance %q: %w", id, runtime.ErrNotFound)
	}
	dir := r.instanceDir(id)
	var rec record
	if err := readJSON(filepath.Join(dir, recordFile), &rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
		}
		return nil, nil, err
	}
	var st shimState
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &rec, nil, nil
		}
		return nil, nil, err
	}
	return &rec, &st, nil
}

// observe returns the current state of an instance, adopting its shim when
// it is alive and not watched yet, settling it when its shim is gone.
func (r *Runtime) observe(id string) (*record, *shimState, *handle, error) {
	rec, st, err := r.load(id)
	if err != nil {
		return nil, nil, nil, err
	}
	if st == nil {
		r.mu.Lock()
		starting := r.starting[id]
		r.mu.Unlock()
		if starting {
			st = &shimState{State: runtime.StateRunning}
		} else {
			st = &shimState{State: runtime.StateExited, ExitCode: -1, Message: "never started"}
		}
		return rec, st, nil, nil
	}
	if st.State == runtime.StateExited {
		return rec, st, nil, nil
	}
	r.mu.Lock()
	h := r.handles[id]
	r.mu.Unlock()
	if h != nil && !h.gone.Load() {
		return rec, st, h, nil
	}
	if h == nil && alive(st.ShimPID, st.ShimStart) {
		return rec, st, r.track(id, st, eventsSize(r.instanceDir(id))), nil
	}
	// The shim is gone (the watcher may not have noticed yet).
	r.settle(id)
	if _, st2, err := r.load(id); err == nil && st2 != nil {
		st = st2
	}
	return rec, st, nil, nil
}

// adoptAll watches the instances whose shim survived the previous server
// and settles the others.
func (r *Runtime) adoptAll() error {
	ents, err := os.ReadDir(r.instDir)
	if err != nil {
		return fmt.Errorf("process runtime: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		id := e.Name()
		rec, _, _, err := r.observe(id)
		if errors.Is(err, runtime.ErrNotFound) {
			// A Start interrupted before it wrote anything (unless it is
			// young: a Start in progress elsewhere).
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				_ = os.RemoveAll(r.instanceDir(id))
			}
			continue
		}
		if err != nil {
			r.log.Warn("skip instance state", "instance", id, "err", err)
			continue
		}
		if rec.Port > 0 {
			reservePort(rec.Port, r.instanceDir(id))
		}
	}
	return nil
}

func (r *Runtime) instance(rec *record, st *shimState) runtime.Instance {
	s := &rec.Spec
	in := runtime.Instance{
		ID:        s.ID(),
		App:       s.App,
		Service:   s.Service,
		Release:   s.Release,
		Index:     s.Index,
		Kind:      s.Kind,
		Hash:      s.Hash,
		State:     st.State,
		PID:       st.PID,
		StartedAt: st.StartedAt,
		Restarts:  st.Restarts,
		ExitCode:  st.ExitCode,
	}
	if in.State == runtime.StateRunning && st.PID > 0 {
		// Paused: the instance's process is stopped by SIGSTOP.
		if ps, err := readStat(st.PID); err == nil && ps.State == 'T' && (st.PIDStart == 0 || ps.Start == st.PIDStart) {
			in.Paused = true
		}
	}
	if rec.Port > 0 {
		in.Addr = "127.0.0.1:" + strconv.Itoa(rec.Port)
		in.Host = "127.0.0.1"
		in.Port = rec.Port
	}
	return in
}

// List returns the instances that match f, running or not, sorted by ID.
func (r *Runtime) List(ctx context.Context, f runtime.Filter) ([]runtime.Instance, error) {
	if err := r.life.Check(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(r.instDir)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	out := []runtime.Instance{}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() {
			continue
		}
		rec, st, _, err := r.observe(e.Name())
		if err != nil {
			continue // removed meanwhile, or being created
		}
		in := r.instance(rec, st)
		if f.Match(in) {
			out = append(out, in)
		}
	}
	return seam.ByID(out), nil
}

// stop is Stop (seam.Stopper): its stop signal to the whole process group,
// then SIGKILL after its stop timeout. It returns once the instance has
// exited. Stopping an exited instance is a no-op.
func (r *Runtime) stop(ctx context.Context, id string) error {
	rec, st, h, err := r.observe(id)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if st.State == runtime.StateExited || h == nil {
		// The shim may still be finishing (it records the exit, then
		// exits): wait for it so that its exit event is published.
		r.mu.Lock()
		h = r.handles[id]
		r.mu.Unlock()
		if h != nil {
			select {
			case <-h.done:
			case <-ctx.Done():
				return fmt.Errorf("stop %s: %w", id, ctx.Err())
			case <-r.ctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
		return nil
	}
	if err := signalProcess(st.ShimPID, st.ShimStart, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	grace := stopTimeout(&rec.Spec) + 10*time.Second
	if exited, err := seam.WaitExit(ctx, r.ctx.Done(), h.done, time.After(grace), id); exited || err != nil {
		return err
	}
	// The shim did not finish in time: kill it; settling kills the group.
	r.log.Warn("instance supervisor did not stop in time; killing it", "instance", id)
	_ = signalProcess(st.ShimPID, st.ShimStart, unix.SIGKILL)
	_, err = seam.WaitExit(ctx, r.ctx.Done(), h.done, nil, id)
	return err
}

func stopTimeout(s *runtime.InstanceSpec) time.Duration {
	if s.StopTimeout > 0 {
		return s.StopTimeout
	}
	return defaultStopTimeout
}

// signalProcess sends sig to process pid if it is still the process that
// started at start, without a window for pid reuse (pidfd).
func signalProcess(pid int, start uint64, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return err
		}
		// No pidfd support: the start time check narrows the window.
		if !alive(pid, start) {
			return unix.ESRCH
		}
		return unix.Kill(pid, sig)
	}
	defer unix.Close(fd)
	if !alive(pid, start) {
		return unix.ESRCH
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// Remove deletes an instance, stopping it first if it runs. Its logs are
// kept.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	unlock := r.ids.Lock(id)
	defer unlock()
	if _, _, err := r.load(id); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := r.stop(ctx, id); err != nil {
		return err
	}
	r.mu.Lock()
	if h := r.handles[id]; h != nil {
		delete(r.handles, id)
		h.closeWatch()
	}
	r.mu.Unlock()
	releasePorts(r.instanceDir(id))
	if err := os.RemoveAll(r.accessoryFilesDir(id)); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := os.RemoveAll(filepath.Join(r.tmpRoot(), id)); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := os.RemoveAll(r.instanceDir(id)); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}
