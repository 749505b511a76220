package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of a handover.
const (
	// handoverStartWait bounds how long the new process may take to
	// start and report that it runs (then this server lets go of the data
	// dir).
	handoverStartWait = 60 * time.Second
	// handoverReadyWait bounds how long it may then take to open the data
	// dir and serve the proxy.
	handoverReadyWait = 2 * time.Minute
	// handoverLockWait is how long the new process waits for the data dir.
	handoverLockWait = handoverReadyWait
)

// startExecutable is the path this executable was started from: a
// handover runs the binary found there then (a new one after an upgrade),
// even if this one was moved away since.
var startExecutable, _ = os.Executable()

// listen returns the passed listener for name, or binds addr.
func (s *Server) listen(name, addr string) (net.Listener, error) {
	ln, err := s.inherited.take(name, "tcp", addr)
	if err != nil || ln != nil {
		return ln, err
	}
	return net.Listen("tcp", addr)
}

// reportReady tells whoever waits that the proxy serves: the older server
// of a handover (which then stops accepting and drains), and systemd
// (Type=notify; after a handover this process is the service's main
// process from now on).
func (s *Server) reportReady() {
	if s.inherited.handedOver() {
		sdNotify("MAINPID=" + strconv.Itoa(os.Getpid()) + "\nREADY=1")
		s.inherited.report("ready")
		s.inherited.status.Close()
		s.inherited.status = nil
		s.log.Info("took over the listeners of the previous server")
		return
	}
	sdNotify("READY=1")
}

// waitLockDataDir takes the data dir's lock, waiting up to d for the
// server handing over to let go of it.
func (s *Server) waitLockDataDir(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := s.lockDataDir()
		if !errors.Is(err, ErrDataDirBusy) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ErrHandoverFailed says a handover did not happen; the server that tried
// still serves.
var ErrHandoverFailed = errors.New("handover failed")

// Handover replaces this server with a new process of the moorage binary
// now at this executable's path (the same binary for a graceful restart,
// a newer one for an upgrade), without refusing or failing a request:
//
//  1. The new process starts with this server's listening sockets (the
//     proxy's, the metrics' and the control socket), dup'ed as passed fds,
//     and reports on a pipe once it runs.
//  2. This server stops its control API and engine (as Shutdown does:
//     running operations are interrupted, and recovered by the new
//     process) and lets go of the data dir; the proxy keeps serving.
//  3. The new process takes the data dir, serves the recorded routes on
//     the same sockets, and reports ready; then it recovers and serves the
//     control API (whose clients wait in the socket's backlog meanwhile).
//  4. This server stops accepting and drains the requests in flight.
//
// Running instances are not touched. A nil error means the new process
// serves and this one is done (it has shut down). If the new process does
// not start (a broken binary), this server keeps serving everything and
// the error says why; if it fails after step 2, the proxy keeps serving
// the routes it has and the error says the control API is down until a
// restart.
func (s *Server) Handover(ctx context.Context) error {
	exe := startExecutable
	if exe == "" {
		return fmt.Errorf("%w: the path of this executable is unknown", ErrHandoverFailed)
	}
	type named struct {
		name string
		ln   net.Listener
	}
	lns := []named{{lnHTTP, s.httpLn}, {lnHTTPS, s.httpsLn}, {lnMetrics, s.metricsLn}, {lnAPI, s.apiLn}}
	var names []string
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, l := range lns {
		if l.ln == nil {
			continue
		}
		fd, err := dupListener(l.ln)
		if err != nil {
			return fmt.Errorf("%w: pass the %s socket: %v", ErrHandoverFailed, l.name, err)
		}
		names = append(names, l.name)
		fds = append(fds, fd)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHandoverFailed, err)
	}
	defer r.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return fmt.Errorf("%w: %v", ErrHandoverFailed, err)
	}
	// Raw descriptors (ForkExec, not os/exec): os/exec would take each
	// file's Fd(), which turns the shared sockets to blocking mode for
	// this process too, and a blocking accept cannot be interrupted.
	files := []uintptr{devnull.Fd(), 1, 2}
	for _, fd := range fds {
		files = append(files, uintptr(fd))
	}
	files = append(files, w.Fd())
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", envHandoverFDs, envHandoverPPID, envHandoverReady:
			continue
		}
		env = append(env, kv)
	}
	env = append(env, envHandoverFDs+"="+strings.Join(names, ":"), envHandoverPPID+"="+strconv.Itoa(os.Getpid()),
		envHandoverReady+"="+strconv.Itoa(len(files)-1))
	args := append([]string{exe}, os.Args[1:]...)
	pid, err := syscall.ForkExec(exe, args, &syscall.ProcAttr{Env: env, Files: files})
	devnull.Close()
	w.Close()
	if err != nil {
		return fmt.Errorf("%w: start %s: %v; this server keeps serving", ErrHandoverFailed, exe, err)
	}
	proc, _ := os.FindProcess(pid)
	exited := make(chan string, 1)
	go func() {
		st, err := proc.Wait()
		if err != nil {
			exited <- err.Error()
		} else {
			exited <- st.String()
		}
	}()
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	s.log.Info("handing over to a new server process", "pid", pid, "executable", exe)
	wait := func(want string, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					select {
					case st := <-exited:
						return fmt.Errorf("the new process exited (%s)", st)
					case <-time.After(5 * time.Second):
						return errors.New("the new process closed its status pipe")
					}
				}
				if l == want {
					return nil
				}
			case <-t.C:
				return fmt.Errorf("the new process did not report %q within %s", want, d)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := wait("waiting", handoverStartWait); err != nil {
		proc.Signal(syscall.SIGKILL)
		return fmt.Errorf("%w: %v; this server keeps serving (see the new process's log above)", ErrHandoverFailed, err)
	}
	// The new process runs: let go of the data dir, keep the proxy up.
	if ul, ok := s.apiLn.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	s.keepSocket = true
	if s.metricsSrv != nil {
		// The metrics read the store, which is let go of below: this
		// process stops serving them (the new one has the socket, and
		// takes the scrapes waiting in its backlog once it serves).
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if s.metricsSrv.Shutdown(mctx) != nil {
			s.metricsSrv.Close()
		}
		cancel()
	}
	// Webhooks (which read the store and start deploys) are answered 503
	// from now on, in stopControl.
	for _, e := range s.stopControl(ctx) {
		s.log.Warn("handover", "err", e)
	}
	s.releaseDataDir()
	if err := wait("ready", handoverReadyWait); err != nil {
		proc.Signal(syscall.SIGKILL)
		s.log.Error("the new server process failed after this one let go of the data dir: the proxy keeps serving its routes, the control API is down until moorage is restarted", "err", err)
		return fmt.Errorf("%w: %v", ErrHandoverFailed, err)
	}
	s.log.Info("the new server process serves: draining", "pid", pid)
	err = s.Shutdown(context.WithoutCancel(ctx))
	return err
}

// dupListener duplicates ln's socket (close-on-exec), through SyscallConn
// so that the socket stays non-blocking.
func dupListener(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}
