//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// groupIO is the standard I/O of a process run by runGroup.
type groupIO struct {
	Stdin  io.Reader // nil: /dev/null
	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded; may equal Stdout
	TTY    bool      // a pseudo-terminal for stdin, stdout and stderr (Stderr unused)
	// Size and Resize: the terminal's size at the start and its changes
	// (runtime.RunSpec); only with TTY.
	Size   runtime.TermSize
	Resize <-chan runtime.TermSize
	// Cred runs the process as another user (nil: as the server).
	Cred *syscall.Credential
}

// groupResult is how a process run by runGroup ended.
type groupResult struct {
	code int    // exit code; -1 when killed by a signal
	msg  string // "exit status 2", "killed by SIGKILL"
}

// runGroup runs cmd to completion in its own process group (its own
// session with a TTY). Cancelling ctx or reaching timeout (0: none) kills
// the whole group and returns ctx's error or ErrTimeout. When the process
// exits, whatever is left of its group is killed too, before the process is
// reaped, so nothing is left behind and the group id cannot be reused
// meanwhile. started, when set, is called with the pid once it runs.
func runGroup(ctx context.Context, cmd *exec.Cmd, gio groupIO, timeout time.Duration, started func(pid int)) (groupResult, error) {
	var (
		childEnds []*os.File // closed in the parent once the child runs
		readEnds  []*os.File // the parent's ends, drained by copiers
		copiers   sync.WaitGroup
	)
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	drain := func(r *os.File, w io.Writer) {
		readEnds = append(readEnds, r)
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			// A failing w must not stop the draining (the child would
			// block on a full pipe). A pty's master fails with EIO once
			// the child is gone.
			_, _ = io.Copy(&seam.DrainWriter{W: w}, r)
		}()
	}

	if gio.TTY {
		master, slave, err := openPTY()
		if err != nil {
			return groupResult{}, fmt.Errorf("allocate a terminal: %w", err)
		}
		if !gio.Size.Zero() {
			if err := setWinsize(master, gio.Size); err != nil {
				closeAll([]*os.File{master, slave})
				return groupResult{}, fmt.Errorf("set the terminal's size: %w", err)
			}
		}
		// Each change of the client's terminal; the kernel sends the
		// command SIGWINCH.
		defer seam.FollowResize(gio.Resize, func(sz runtime.TermSize) { _ = setWinsize(master, sz) })()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Credential: gio.Cred}
		childEnds = append(childEnds, slave)
		drain(master, seam.WriterOr(gio.Stdout))
		if gio.Stdin != nil {
			go func() { _, _ = io.Copy(master, gio.Stdin) }()
		}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: gio.Cred}
		if gio.Stdin != nil {
			if f, ok := gio.Stdin.(*os.File); ok {
				cmd.Stdin = f
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					return groupResult{}, err
				}
				cmd.Stdin = r
				childEnds = append(childEnds, r)
				// Not waited for: Stdin may block forever. It ends when
				// its reader returns or the pipe breaks.
				go func() {
					_, _ = io.Copy(w, gio.Stdin)
					w.Close()
				}()
			}
		}
		if gio.Stdout != nil {
			f, err := outputFile(gio.Stdout, &childEnds, drain)
			if err != nil {
				closeAll(childEnds)
				closeAll(readEnds)
				return groupResult{}, err
			}
			cmd.Stdout = f
		}
		switch {
		case gio.Stderr == nil:
		case gio.Stdout != nil && sameWriter(gio.Stderr, gio.Stdout):
			cmd.Stderr = cmd.Stdout
		default:
			f, err := outputFile(gio.Stderr, &childEnds, drain)
			if err != nil {
				closeAll(childEnds)
				closeAll(readEnds)
				return groupResult{}, err
			}
			cmd.Stderr = f
		}
	}

	err := cmd.Start()
	closeAll(childEnds)
	if err != nil {
		closeAll(readEnds)
		copiers.Wait()
		return groupResult{}, unwrapExec(err)
	}
	pid := cmd.Process.Pid
	if started != nil {
		started(pid)
	}

	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	var killed error
	select {
	case <-exited:
	case <-ctx.Done():
		killed = ctx.Err()
		_ = unix.Kill(-pid, unix.SIGKILL)
		<-exited
	case <-expired:
		killed = fmt.Errorf("after %s: %w", timeout, runtime.ErrTimeout)
		_ = unix.Kill(-pid, unix.SIGKILL)
		<-exited
	}
	// The leader is a zombie until reaped: its group id is still ours.
	killGroupWait(pid, 5*time.Second)
	_ = cmd.Wait()

	done := make(chan struct{})
	go func() { copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A process that left the group still holds the output open.
		closeAll(readEnds)
		<-done
	}
	closeAll(readEnds)

	res := groupResult{code: -1, msg: "exited"}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		res.code, res.msg = exitMessage(ws)
	}
	if killed != nil {
		return res, killed
	}
	return res, nil
}

// sameWriter reports whether a and b are the same writer (Stderr ==
// Stdout), without panicking on uncomparable writers.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() { _ = recover() }()
	return a == b
}

// outputFile returns the file the child writes to for w: w itself when it
// is a file, else a pipe drained into w.
func outputFile(w io.Writer, childEnds *[]*os.File, drain func(*os.File, io.Writer)) (*os.File, error) {
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	*childEnds = append(*childEnds, pw)
	drain(r, w)
	return pw, nil
}

// openPTY allocates a pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	var n int
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil { // unlockpt
			return
		}
		if n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); ioErr != nil { // ptsname
			return
		}
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	})
	if err == nil {
		err = ioErr
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// setWinsize sets the size of the terminal whose master is f.
func setWinsize(f *os.File, sz runtime.TermSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Rows, Col: sz.Cols})
	}); err != nil {
		return err
	}
	return serr
}
