package client

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func startTestConn(t *testing.T, script string) *cmdConn {
	t.Helper()
	c, err := startCmdConn(exec.Command("/bin/sh", "-c", script), SSHError{Target: "ssh://test", RemoteBin: "moorage"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exited reports whether the conn's command has exited.
func exited(c *cmdConn) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func TestCmdConnRoundTripAndHalfClose(t *testing.T) {
	c := startTestConn(t, "cat; echo bye")
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// Closing the write side ends cat; what the command writes after that
	// still arrives, then EOF.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye\n" {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
	c.Close()
	if !exited(c) {
		t.Fatal("the command outlived Close")
	}
}

// Output written just before the command exits is not lost.
func TestCmdConnOutputBeforeExit(t *testing.T) {
	c := startTestConn(t, "printf 'HTTP/1.1 200 OK\\r\\n'; exit 0")
	<-c.done
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("%q, %v", b, err)
	}
}

func TestCmdConnFailure(t *testing.T) {
	c := startTestConn(t, "echo 'Warning: Permanently added host' >&2; echo 'Connection closed by 127.0.0.1 port 22' >&2; exit 255")
	_, err := c.Read(make([]byte, 10))
	var se *SSHError
	if !errors.As(err, &se) || se.Status != 255 || se.LastLine != "Connection closed by 127.0.0.1 port 22" || se.Target != "ssh://test" {
		t.Fatalf("%#v", err)
	}
	// Writing to a command that is gone says the same.
	_, err = c.Write([]byte(strings.Repeat("x", 1<<20)))
	if !errors.As(err, &se) || se.Status != 255 {
		t.Fatalf("write: %v", err)
	}
}

// Close kills a command that does not end when its input does.
func TestCmdConnCloseKills(t *testing.T) {
	old := exitWait
	exitWait = 100 * time.Millisecond
	defer func() { exitWait = old }()
	c := startTestConn(t, "trap '' HUP PIPE; exec sleep 1000 </dev/null >/dev/null")
	c.Close()
	if !exited(c) {
		t.Fatal("the command outlived Close")
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestCmdConnDeadline(t *testing.T) {
	c := startTestConn(t, "cat")
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	io.WriteString(c, "x")
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "x" {
		t.Fatalf("read after clearing the deadline: %q, %v", b, err)
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "",
		"one\ntwo\n\n  \n":                   "two",
		"a\r\nerror: cannot reach it\r\n":    "cannot reach it",
		"bash: moorage: command not found\n": "bash: moorage: command not found",
	} {
		if got := lastLine(in); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}
