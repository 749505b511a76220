package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// `moorage run` from a terminal: the one-off's terminal has the size of
// the user's from the start, and follows it when the user's window is
// resized (the command gets SIGWINCH), so full-screen programs (editors,
// pagers, a REPL's line editing) draw for the window they are shown in.
// The CLI runs on a pseudo-terminal of the test's, as in a user's shell.
func TestRunFollowsTerminalSize(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)

	master, slave := openTestPTY(t)
	setSize(t, master, 40, 120)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "-a", "hello", "--", "sh", "-c", `stty size; trap "stty size" WINCH; read x; echo done`)
	cmd.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// Its own session with the terminal as its controlling one: it gets
	// the terminal's SIGWINCH, as a command typed in a shell does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var out strings.Builder
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			mu.Lock()
			out.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	printed := func(want string) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(out.String(), want) {
				return fmt.Errorf("output so far: %q", out.String())
			}
			return nil
		}
	}
	waitFor(t, time.Minute, "the one-off to print the terminal's size at the start", printed("40 120"))
	setSize(t, master, 25, 90)
	waitFor(t, time.Minute, "the one-off to print the terminal's new size", printed("25 90\r\ndone"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("moorage run: %v; output %q", err, out.String())
	}
}

// openTestPTY opens a pseudo-terminal pair.
func openTestPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// setSize resizes the terminal, as a window manager does: the kernel
// sends SIGWINCH to its foreground process group.
func setSize(t *testing.T, master *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}
