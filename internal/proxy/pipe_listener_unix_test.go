//go:build unix

package proxy

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// pipeListener is a net.Listener whose connections are connected pairs of
// Unix sockets: real sockets, with half-close and deadlines, but no TCP
// state for the kernel to keep (or to track in a shared conntrack table)
// after they close, so fuzzing can open them by the million. The server
// side reports a 127.0.0.1 remote address, as a TCP client would have.
type pipeListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
	port   atomic.Uint32
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// dial returns the client side of a new connection, once the server
// accepted it.
func (l *pipeListener) dial(t testing.TB) net.Conn {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "pipe")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1024 + int(l.port.Add(1)%60000)}
	server := &pipeConn{UnixConn: conns[1].(*net.UnixConn), remote: addr}
	select {
	case l.ch <- server:
	case <-l.done:
		conns[0].Close()
		conns[1].Close()
		t.Fatal("listener closed")
	}
	return &pipeConn{UnixConn: conns[0].(*net.UnixConn), local: addr}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// pipeConn is one side of a pipeListener connection, with TCP-like
// addresses.
type pipeConn struct {
	*net.UnixConn
	local, remote net.Addr
}

func (c *pipeConn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.UnixConn.LocalAddr()
}

func (c *pipeConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.UnixConn.RemoteAddr()
}
