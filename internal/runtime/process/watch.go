//go:build linux

package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/runtime"
)

// ownShims holds the pids of shims started by this process (by any
// Runtime in it): whoever sees one exit reaps it.
var ownShims sync.Map // pid → struct{}

// handle is a watched instance whose shim is alive.
type handle struct {
	id        string
	dir       string
	shimPID   int
	shimStart uint64

	gone atomic.Bool   // the shim has exited
	done chan struct{} // closed once its exit is settled and its events published

	evMu   sync.Mutex
	offset int64 // bytes of the events file already published

	closeMu   sync.Mutex
	closer    func()
	unwatched bool
}

// setCloser registers how to stop the shim watcher; after closeWatch it
// runs at once.
func (h *handle) setCloser(fn func()) {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.unwatched {
		fn()
		return
	}
	h.closer = fn
}

func (h *handle) closeWatch() {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	h.unwatched = true
	if h.closer != nil {
		h.closer()
		h.closer = nil
	}
}

// track starts watching an instance whose shim is alive. offset is where
// its events file starts to be new. It returns the existing handle when
// the instance is already watched.
func (r *Runtime) track(id string, st *shimState, offset int64) *handle {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.handles[id]; h != nil {
		return h
	}
	h := &handle{
		id:        id,
		dir:       r.instanceDir(id),
		shimPID:   st.ShimPID,
		shimStart: st.ShimStart,
		done:      make(chan struct{}),
		offset:    offset,
	}
	if !r.life.Go(func() { r.watchShim(h) }) {
		close(h.done)
		return h
	}
	r.handles[id] = h
	return h
}

// watchShim waits for the shim to exit: through a pidfd polled by the Go
// netpoller (no thread blocked, works for shims that are not our children),
// or by polling /proc where pidfds are not available.
func (r *Runtime) watchShim(h *handle) {
	fd, err := openPidfd(h.shimPID)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			r.shimExited(h)
			return
		}
		r.pollShim(h)
		return
	}
	// The pid could have been reused before the pidfd was opened: the
	// start time read after opening proves the pidfd names our shim.
	if !alive(h.shimPID, h.shimStart) {
		unix.Close(fd)
		r.shimExited(h)
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		r.pollShim(h)
		return
	}
	h.setCloser(func() { f.Close() })
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err == nil && n > 0
	})
	f.Close()
	if err != nil { // closed by Close
		return
	}
	r.shimExited(h)
}

func openPidfd(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, unix.O_NONBLOCK) // PIDFD_NONBLOCK
	if errors.Is(err, unix.EINVAL) {
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			err = unix.SetNonblock(fd, true)
			if err != nil {
				unix.Close(fd)
			}
		}
	}
	return fd, err
}

func (r *Runtime) pollShim(h *handle) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for alive(h.shimPID, h.shimStart) {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
	r.shimExited(h)
}

func (r *Runtime) shimExited(h *handle) {
	if _, ok := ownShims.LoadAndDelete(h.shimPID); ok {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(h.shimPID, &ws, 0, nil)
	}
	h.gone.Store(true)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// watch publishes new events of watched instances and settles the ones
// whose shim exited.
func (r *Runtime) watch() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
		r.mu.Lock()
		hs := make([]*handle, 0, len(r.handles))
		for _, h := range r.handles {
			hs = append(hs, h)
		}
		r.mu.Unlock()
		for _, h := range hs {
			if !h.gone.Load() {
				r.publishEvents(h)
				continue
			}
			r.settle(h.id)
			r.publishEvents(h)
			r.mu.Lock()
			if r.handles[h.id] == h {
				delete(r.handles, h.id)
			}
			r.mu.Unlock()
			close(h.done)
		}
	}
}

// publishEvents publishes the complete lines appended to h's events file
// since the last call.
func (r *Runtime) publishEvents(h *handle) {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	p := filepath.Join(h.dir, eventsFile)
	if fi, err := os.Stat(p); err != nil || fi.Size() <= h.offset {
		return
	}
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(h.offset, io.SeekStart); err != nil {
		return
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return
	}
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return
	}
	h.offset += int64(end + 1)
	for _, line := range bytes.Split(b[:end], []byte{'\n'}) {
		var ev runtime.InstanceEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			r.log.Warn("bad instance event", "instance", h.id, "err", err)
			continue
		}
		r.events.Publish(ev)
	}
}

// eventsSize returns the current size of an instance's events file.
func eventsSize(dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, eventsFile))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// settle makes the recorded state of an instance whose shim is gone final.
// A shim that exited normally has already written it; one that died (it
// was SIGKILLed, the machine ran out of memory) left its child running:
// the orphaned process group is killed, and the instance is recorded as
// exited with an exit event.
func (r *Runtime) settle(id string) {
	unlock := r.lockSettle()
	defer unlock()
	dir := r.instanceDir(id)
	var st shimState
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return
	}
	if st.State == runtime.StateExited || alive(st.ShimPID, st.ShimStart) {
		return
	}
	if st.PGID > 0 {
		killOrphans(st.PGID, st.ShimPID, st.PID, st.PIDStart, 5*time.Second)
	}
	var rec record
	_ = readJSON(filepath.Join(dir, recordFile), &rec)
	if st.State == runtime.StateRunning {
		st.ExitCode = -1
	}
	st.State = runtime.StateExited
	st.Message = "supervisor died"
	st.PID, st.PIDStart = 0, 0
	st.Updated = time.Now().UTC()
	if err := writeJSON(filepath.Join(dir, stateFile), &st); err != nil {
		r.log.Warn("record exit", "instance", id, "err", err)
	}
	ev := eventFor(&rec.Spec)
	ev.Time = st.Updated
	ev.Type = runtime.EventExit
	ev.ExitCode = st.ExitCode
	ev.Message = st.Message
	ev.Restarts = st.Restarts
	if err := appendJSONLine(filepath.Join(dir, eventsFile), ev); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("record exit event", "instance", id, "err", err)
	}
	r.log.Warn("instance supervisor died; killed what was left", "instance", id)
}

func (r *Runtime) lockSettle() func() {
	return r.ids.Lock("\x00settle")
}

// eventFor returns an event with the identity fields of s.
func eventFor(s *runtime.InstanceSpec) runtime.InstanceEvent {
	return runtime.InstanceEvent{
		Instance: s.ID(),
		App:      s.App,
		Service:  s.Service,
		Release:  s.Release,
		Kind:     s.Kind,
	}
}
