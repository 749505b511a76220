package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// The fast path: requests without a body (GET, HEAD, most of the traffic)
// go to the target over a minimal HTTP/1.1 client of the proxy's own,
// written for a proxy: the serving goroutine writes the request head
// straight from the incoming request and parses the response head straight
// into the client's response, with no per-connection goroutines, no request
// clone and a handful of allocations. Requests with a body, and upgrades,
// take the standard library's ReverseProxy (the slow path, see target.go).

// errUpstream wraps failures of the fast path.
var (
	errBadResponse      = errors.New("malformed response from upstream")
	errResponseTooLarge = errors.New("upstream response header too large")
)

// maxResponseHeaderBytes bounds an upstream response's header block.
const maxResponseHeaderBytes = 64 << 10

// upstreamConn is one keep-alive HTTP/1.1 connection of the fast path.
type upstreamConn struct {
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	peek      [1]byte
	peekN     int
	peekErr   error
	peekFn    func(fd uintptr)
	raw       syscall.RawConn
}

func newUpstreamConn(c net.Conn) *upstreamConn {
	return &upstreamConn{conn: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}
}

func (uc *upstreamConn) close() { _ = uc.conn.Close() }

// connPool keeps a target's idle fast-path connections, most recently used
// first out.
type connPool struct {
	mu      sync.Mutex
	idle    []*upstreamConn
	max     int
	timeout time.Duration
	closed  bool // the target was forgotten: connections are closed, not kept
}

// get returns an idle connection that still works, or nil. Every
// connection is checked before reuse (a non-blocking peek, see alive):
// one the upstream closed is dropped, and so is one with bytes waiting
// that no request asked for (an app that wrote past the end of its
// response), which the next request would otherwise read as its answer.
func (p *connPool) get(now time.Time) *upstreamConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(uc.idleSince) > p.timeout {
			// The newest is expired, so all are.
			stale := p.idle
			p.idle = nil
			p.mu.Unlock()
			uc.close()
			for _, c := range stale {
				c.close()
			}
			return nil
		}
		p.mu.Unlock()
		if uc.alive() {
			return uc
		}
		uc.close()
	}
}

// put keeps uc for reuse, or closes it when the pool is full or closed, or
// when bytes past the end of the response are already buffered: the
// upstream sent more than it framed, and the connection's state is
// unknown.
func (p *connPool) put(uc *upstreamConn, now time.Time) {
	uc.idleSince = now
	if uc.br.Buffered() > 0 {
		uc.close()
		return
	}
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		uc.close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// closeIdle closes every idle connection; with forever, later puts close
// theirs too.
func (p *connPool) closeIdle(forever bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if forever {
		p.closed = true
	}
	p.mu.Unlock()
	for _, uc := range idle {
		uc.close()
	}
}

// closeExpired closes the connections idle longer than the timeout (the
// least recently used sit at the bottom of the stack).
func (p *connPool) closeExpired(now time.Time) {
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleSince) > p.timeout {
		i++
	}
	expired := append([]*upstreamConn(nil), p.idle[:i]...)
	p.idle = append(p.idle[:0], p.idle[i:]...)
	p.mu.Unlock()
	for _, uc := range expired {
		uc.close()
	}
}

// fastPath reports whether r goes over the fast path: no body and no
// upgrade.
func fastPath(r *http.Request) bool {
	return r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) && r.Header["Upgrade"] == nil
}

// tryResult is the outcome of sending a request to one target.
type tryResult int

const (
	tryDone       tryResult = iota // answered (or the client went away): nothing more to do
	tryDialFailed                  // could not connect: nothing reached the app
	trySendFailed                  // failed after the request may have reached the app, before any answer
	tryTimeout                     // no response headers within ResponseHeaderTimeout
)

// roundTrip proxies a bodyless request to t over the fast path. Unless it
// returns tryDone, nothing was written to the client and a.err says why.
func (t *target) roundTrip(a *attempt, r *http.Request, idempotent bool) tryResult {
	uc := t.pool.get(a.now)
	reused := uc != nil
	for {
		if uc == nil {
			c, err := t.dialer.DialContext(r.Context(), "tcp", t.addr)
			if err != nil {
				a.err = &dialError{err: err}
				if r.Context().Err() != nil {
					return tryDone // the client left; nobody to answer
				}
				return tryDialFailed
			}
			uc = newUpstreamConn(c)
		}
		res, retryFresh := t.exchange(a, r, uc, reused, idempotent)
		if !retryFresh {
			return res
		}
		// A reused connection the upstream had closed: the request did not
		// reach the app (or is idempotent); once more on a new connection.
		uc.close()
		uc, reused = nil, false
	}
}

// exchange sends r over uc and copies the response. retryFresh asks for
// one more try on a new connection (uc failed before the upstream read
// the request, as far as one can tell).
func (t *target) exchange(a *attempt, r *http.Request, uc *upstreamConn, reused, idempotent bool) (res tryResult, retryFresh bool) {
	writeRequestHead(uc.bw, r, a.reqID, a.connTokens[:0])
	if err := uc.bw.Flush(); err != nil {
		uc.bw.Reset(uc.conn)
		if reused {
			return 0, true // a write on a connection the upstream closed: nothing was read
		}
		uc.close()
		a.err = err
		return trySendFailed, false
	}
	// One deadline per request: it bounds the wait for the response head,
	// and is lifted only when the body is not already in the buffer (the
	// next request on the connection sets its own).
	_ = uc.conn.SetReadDeadline(a.now.Add(t.responseHeaderTimeout))
	hd, err := readResponseHead(a, uc.br, r.Method)
	if err != nil {
		uc.close()
		if r.Context().Err() != nil {
			return tryDone, false
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			a.err = fmt.Errorf("no response headers within %s: %w", t.responseHeaderTimeout, err)
			return tryTimeout, false
		}
		if reused && !hd.gotBytes && idempotent {
			return 0, true
		}
		a.err = err
		return trySendFailed, false
	}
	if !hd.noBody && (hd.length < 0 || int64(uc.br.Buffered()) < hd.length) {
		_ = uc.conn.SetReadDeadline(time.Time{})
	}

	h := a.w.Header()
	a.setHeaders(h)
	if a.reqID != "" {
		h[headerRequestID] = []string{a.reqID}
	}
	a.WriteHeader(hd.status)
	keep, rerr, werr := copyBody(a, uc.br, &hd)
	if keep && !hd.close {
		t.pool.put(uc, time.Now())
	} else {
		uc.close()
	}
	if rerr != nil && werr == nil && r.Context().Err() == nil {
		// The upstream failed in the middle of the body: abort the client's
		// response, so it cannot take a truncated body for a whole one.
		t.logger.Warn("upstream failed during the response body", "method", r.Method, "path", r.URL.Path, "err", rerr)
		panic(http.ErrAbortHandler)
	}
	return tryDone, false
}
