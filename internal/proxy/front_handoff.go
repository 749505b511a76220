// Connections the front hands over to net/http, with what it already read.

package proxy

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// prefixConn is a connection handed to net/http with the bytes the front
// already read from it, and the deadline of the head the front began to
// read: until net/http has read that head, no read deadline it sets goes
// past it. net/http sets a deadline (ReadHeaderTimeout) before reading a
// head and clears it (the server has no ReadTimeout) once it has: the
// first zero deadline ends the head.
type prefixConn struct {
	net.Conn
	prefix []byte

	mu           sync.Mutex
	headDeadline time.Time // zero: no bound (any more)
}

func (c *prefixConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if !c.headDeadline.IsZero() {
		if t.IsZero() {
			c.headDeadline = time.Time{} // the head was read
		} else if t.After(c.headDeadline) {
			t = c.headDeadline
		}
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *prefixConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close the connection as it does for TCP.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// tlsPrefixConn is a prefixConn over TLS: net/http takes the request's TLS
// state from ConnectionState, as from a *tls.Conn (whose handshake the
// front did).
type tlsPrefixConn struct {
	*prefixConn
	state *tls.ConnectionState
}

func (c *tlsPrefixConn) ConnectionState() tls.ConnectionState { return *c.state }

// handoffListener is the listener of the net/http server behind a Server:
// it accepts the connections the front hands over.
type handoffListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// give hands c to net/http; false when the server is shutting down.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "moorage-front" }
