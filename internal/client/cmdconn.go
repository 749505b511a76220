package client

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// exitWait bounds how long a connection waits for its command once the
// stream ended (to report why) or once it was closed (before killing it).
var exitWait = 5 * time.Second

// cmdConn is a net.Conn over a command's standard input and output: ssh
// running `moorage dial-stdio` on the server's host. Writing to it feeds the
// command's input; closing it closes that input (ssh passes the EOF on, and
// the remote side closes) and waits for the command, killing it if it does
// not exit. When the command fails, reads and writes return an *SSHError
// with its exit status and the last line of its standard error.
type cmdConn struct {
	cmd    *exec.Cmd
	in     *os.File // our end of the command's standard input
	out    *os.File // our end of its standard output
	stderr *tailWriter
	errs   SSHError // the failure's template: where, what

	done    chan struct{} // closed once the command has exited
	waitErr error         // Wait's answer, set before done closes
	closed  atomic.Bool
	once    sync.Once
}

// startCmdConn starts cmd with pipes of its own (not cmd's StdinPipe and
// StdoutPipe: Wait closes those, losing output not yet read).
func startCmdConn(cmd *exec.Cmd, errs SSHError) (*cmdConn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &cmdConn{cmd: cmd, in: inW, out: outR, stderr: &tailWriter{max: 4 << 10}, errs: errs, done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	// A process ssh leaves behind (a ControlPersist master) may hold
	// standard error open: Wait does not wait for it past this.
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errs.Err = err
		return nil, &errs
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.out.Read(p)
	if err != nil {
		err = c.failure(err)
	}
	return n, err
}

func (c *cmdConn) Write(p []byte) (int, error) {
	n, err := c.in.Write(p)
	if err != nil {
		err = c.failure(err)
	}
	return n, err
}

// failure turns the end of the stream into the command's failure, when it
// failed.
func (c *cmdConn) failure(err error) error {
	if c.closed.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	select {
	case <-c.done:
	case <-time.After(exitWait):
		return err
	}
	if se := c.exitError(); se != nil {
		return se
	}
	return err
}

// exitError is the command's failure once it has exited, or nil.
func (c *cmdConn) exitError() *SSHError {
	var ee *exec.ExitError
	if !errors.As(c.waitErr, &ee) {
		return nil
	}
	se := c.errs
	se.Status, se.LastLine = ee.ExitCode(), lastLine(c.stderr.String())
	return &se
}

// CloseWrite closes the command's input: the remote side sees EOF.
func (c *cmdConn) CloseWrite() error { return c.in.Close() }

// Close closes both pipes and waits for the command (at most exitWait,
// then kills it).
func (c *cmdConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.in.Close()
		c.out.Close()
		select {
		case <-c.done:
		case <-time.After(exitWait):
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return nil
}

func (c *cmdConn) LocalAddr() net.Addr  { return cmdAddr(c.errs.Target) }
func (c *cmdConn) RemoteAddr() net.Addr { return cmdAddr(c.errs.Target) }

func (c *cmdConn) SetDeadline(t time.Time) error {
	return errors.Join(c.in.SetWriteDeadline(t), c.out.SetReadDeadline(t))
}
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return c.out.SetReadDeadline(t) }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return c.in.SetWriteDeadline(t) }

type cmdAddr string

func (a cmdAddr) Network() string { return "ssh" }
func (a cmdAddr) String() string  { return string(a) }

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// lastLine is the last non-blank line of s, without a leading "error: ".
func lastLine(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return strings.TrimPrefix(l, "error: ")
		}
	}
	return ""
}
