//go:build linux

package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// shimEnv marks a process started as a shim; its value is the instance's
// state directory.
const shimEnv = "MOORAGE_PROCESS_SHIM"

// Descriptors the runtime hands a shim (exec.Cmd.ExtraFiles).
const (
	shimConfigFD = 3 // the runtime writes the shimConfig (JSON) and closes
	shimResultFD = 4 // the shim writes its shimResult (JSON) and closes
)

// MaybeRunShim runs the instance supervisor and exits when this process was
// started as one by the process runtime; otherwise it returns at once.
// Every binary that uses the process runtime (cmd/moorage, test binaries in
// TestMain) calls it first thing in main.
func MaybeRunShim() {
	dir := os.Getenv(shimEnv)
	if dir == "" {
		return
	}
	os.Exit(runShim(dir))
}

// shim supervises one instance: it starts the child in its own process
// group, pipes its output into the log, restarts it after crashes with
// backoff, and stops it on SIGTERM. It lives in its own session so the
// server can die and be replaced without the instance noticing.
type shim struct {
	cfg  shimConfig
	log  *logFile
	self int

	mu     sync.Mutex
	leader int // the running child (0: none); its pid is its process group
	wake   chan struct{}
	exits  chan childExit
	stop   <-chan struct{} // closed by the first SIGTERM or SIGINT

	st     shimState
	pumps  sync.WaitGroup
	pipesR []*os.File
}

type childExit struct {
	pid int
	ws  syscall.WaitStatus
	at  time.Time
}

func runShim(stateDir string) int {
	os.Unsetenv(shimEnv)
	cfgFile := os.NewFile(shimConfigFD, "config")
	res := os.NewFile(shimResultFD, "result")
	if cfgFile == nil || res == nil {
		fmt.Fprintln(os.Stderr, "moorage shim: missing config or result descriptor")
		return 2
	}
	var cfg shimConfig
	err := json.NewDecoder(cfgFile).Decode(&cfg)
	cfgFile.Close()
	if err != nil {
		report(res, shimResult{Error: "shim: read config: " + err.Error()})
		return 2
	}
	if cfg.StateDir == "" {
		cfg.StateDir = stateDir
	}
	s := &shim{
		cfg:   cfg,
		self:  os.Getpid(),
		wake:  make(chan struct{}, 1),
		exits: make(chan childExit, 1),
	}
	return s.run(res)
}

func report(f *os.File, r shimResult) {
	_ = json.NewEncoder(f).Encode(r)
	f.Close()
}

func (s *shim) run(res *os.File) int {
	// Orphaned descendants of the child are reparented to the shim, which
	// reaps them and kills them with the child.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	_ = os.Chdir("/")
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)

	s.st = shimState{ShimPID: s.self, ShimStart: startTime(s.self)}
	lf, err := openLogFile(s.cfg.Log, s.cfg.LogMaxSize, s.cfg.LogMaxFiles)
	if err != nil {
		report(res, shimResult{Error: "open log: " + err.Error()})
		return 1
	}
	s.log = lf
	defer lf.Close()

	go s.reap()
	if err := s.startChild(); err != nil {
		report(res, shimResult{Error: err.Error()})
		return 1
	}
	s.st.State = runtime.StateRunning
	s.saveState()
	report(res, shimResult{PID: s.st.PID})
	// What the binary's package initializers allocated (the shim is the
	// whole moorage binary: its packages' regexps, schemas and tables) is
	// garbage or idle here: collect it and hand the pages back now rather
	// than at the scavenger's pace. The shim lives as long as its
	// instance; this is most of its unshared memory (docs/benchmarks.md).
	debug.FreeOSMemory()
	return s.loop(sigs)
}

// loop supervises the child until it is asked to stop. What is a crash,
// the backoff, the restart count and what the events say are
// seam.Supervisor's; the shim is its seam.Child, a process of its own so
// that the instance outlives the server.
func (s *shim) loop(sigs <-chan os.Signal) int {
	stop := make(chan struct{})
	// SIGTERM or SIGINT asks for the stop, once; SIGHUP (the session's
	// terminal went away) does not.
	go func() {
		for sig := range sigs {
			if sig != unix.SIGHUP {
				close(stop)
				return
			}
		}
	}()
	s.stop = stop
	sup := seam.Supervisor{
		Crashes: seam.Crashes{
			Backoff:  seam.Backoff{Min: s.cfg.BackoffMin, Max: s.cfg.BackoffMax, Reset: s.cfg.BackoffReset},
			Restarts: s.st.Restarts,
		},
		Stop: stop,
	}
	sup.Run(s)
	return 0
}

// Wait is seam.Child's: it waits for the child's exit and, once a stop is
// asked, makes it exit (its stop signal, then SIGKILL after stop_timeout).
func (s *shim) Wait() (seam.Exit, error) {
	stop := s.stop
	var kill <-chan time.Time // stop_timeout while stopping
	for {
		select {
		case <-stop:
			stop = nil
			// The main process alone gets the stop signal, as docker and
			// systemd's KillMode=mixed do: a worker such as Celery's
			// prefork parent then lets its children finish their tasks.
			// stop_group: true signals the whole group instead.
			if s.cfg.StopGroup {
				_ = unix.Kill(-s.st.PGID, s.cfg.StopSignal)
			} else {
				_ = unix.Kill(s.st.PID, s.cfg.StopSignal)
			}
			kill = time.After(s.cfg.StopTimeout)

		case <-kill:
			kill = nil
			_ = unix.Kill(-s.st.PGID, unix.SIGKILL)

		case ex := <-s.exits:
			s.cleanup(s.st.PGID)
			s.st.PID, s.st.PIDStart = 0, 0
			code, msg := exitMessage(ex.ws)
			return seam.Exit{Code: code, Message: msg, RanFor: ex.at.Sub(s.st.StartedAt)}, nil
		}
	}
}

// Start is seam.Child's: the restart after a crash's backoff.
func (s *shim) Start() error { return s.startChild() }

// Report is seam.Child's: it saves the state the server reads and appends
// the event.
func (s *shim) Report(st seam.Step) {
	s.st.State, s.st.Restarts = st.State, st.Restarts
	if st.Type != runtime.EventRestart {
		// A restarted child's state keeps the exit before it.
		s.st.ExitCode, s.st.Message = st.Code, st.Message
	}
	if st.Type == runtime.EventExit {
		s.st.Stopped = true // the shim's only exit is a requested stop
	}
	s.saveState()
	s.event(st)
}

// startChild starts the instance's process in its own process group.
func (s *shim) startChild() error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd := &exec.Cmd{
		Path:        s.cfg.Path,
		Args:        s.cfg.Args,
		Env:         s.cfg.Env,
		Dir:         s.cfg.Dir,
		Stdin:       devnull,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: s.cfg.Credential},
	}
	// Hold mu across the start so the reaper cannot see the child's exit
	// before it knows the child.
	s.mu.Lock()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		s.mu.Unlock()
		outR.Close()
		errR.Close()
		return fmt.Errorf("start %s: %w", s.cfg.Args[0], unwrapExec(err))
	}
	pid := cmd.Process.Pid
	s.leader = pid
	s.mu.Unlock()
	_ = cmd.Process.Release() // the reaper waits for it
	select {
	case s.wake <- struct{}{}:
	default:
	}

	s.pipesR = []*os.File{outR, errR}
	s.pumps.Add(2)
	go s.pump(outR, "stdout")
	go s.pump(errR, "stderr")

	s.st.PID, s.st.PGID = pid, pid
	s.st.PIDStart = startTime(pid)
	s.st.StartedAt = time.Now().UTC()
	return nil
}

func unwrapExec(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (s *shim) pump(r *os.File, stream string) {
	defer s.pumps.Done()
	logs.PumpLines(r, func(line []byte) { s.log.WriteLine(time.Now(), stream, line) })
}

// reap waits for every child of the shim: the instance's process and the
// orphans reparented to it (it is a subreaper). When the instance's process
// exits, what is left of its process group is killed before the process is
// reaped, so the group id cannot have been reused.
func (s *shim) reap() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			<-s.wake
			continue
		case err != nil:
			time.Sleep(10 * time.Millisecond)
			continue
		}
		pid := siginfoPID(&info)
		s.mu.Lock()
		leader := s.leader
		if pid == leader {
			s.leader = 0
		}
		s.mu.Unlock()
		if pid == leader {
			_ = unix.Kill(-leader, unix.SIGKILL)
		}
		var ws unix.WaitStatus
		for {
			_, err = unix.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if pid == leader {
			s.exits <- childExit{pid: pid, ws: syscall.WaitStatus(ws), at: time.Now()}
		}
	}
}

// siginfoPID returns si_pid of a SIGCHLD siginfo: it follows si_signo,
// si_errno and si_code, padded to the union's pointer alignment.
func siginfoPID(info *unix.Siginfo) int {
	off := 12
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	b := (*[unsafe.Sizeof(unix.Siginfo{})]byte)(unsafe.Pointer(info))
	return int(*(*int32)(unsafe.Pointer(&b[off])))
}

// cleanup kills what is left of the child's process group and any orphan
// reparented to the shim, then waits for the output to be drained.
func (s *shim) cleanup(pgid int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = unix.Kill(-pgid, unix.SIGKILL)
		left := 0
		for _, p := range allProcs() {
			if !p.dead() && (p.PGID == pgid || p.PPID == s.self) && p.PID != s.self {
				_ = unix.Kill(p.PID, unix.SIGKILL)
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.pumps.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// Something outside the group still holds the pipes.
		for _, f := range s.pipesR {
			f.Close()
		}
		<-done
	}
	for _, f := range s.pipesR {
		f.Close()
	}
	s.pipesR = nil
}

func (s *shim) saveState() {
	s.st.Updated = time.Now().UTC()
	if err := writeJSON(filepath.Join(s.cfg.StateDir, stateFile), &s.st); err != nil {
		fmt.Fprintf(os.Stderr, "moorage shim %s: save state: %v\n", s.cfg.ID, err)
	}
}

func (s *shim) event(st seam.Step) {
	ev := st.Event(s.cfg.Event)
	if err := appendJSONLine(filepath.Join(s.cfg.StateDir, eventsFile), ev); err != nil {
		fmt.Fprintf(os.Stderr, "moorage shim %s: record event: %v\n", s.cfg.ID, err)
	}
}
