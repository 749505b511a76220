package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves a Proxy on plain-HTTP and TLS listeners. The common request — an
// HTTP/1.1 request without a body (GET, HEAD) whose head fits in a few
// kilobytes — is parsed and answered by the proxy's own HTTP/1.1 front: one
// goroutine per connection, no per-request goroutine, context or header
// copies, which is most of net/http's cost in a proxy. Every other request
// (a body, an upgrade, HTTP/1.0, anything unusual or malformed) hands its
// connection over, unread, to the hardened net/http server (HTTPServer),
// which serves it and the rest of that connection: net/http stays the
// authority on everything but the simplest requests, including every error.
//
// Over TLS (ServeTLS) the front does the handshake itself and serves
// HTTP/1.1 the same way; a connection that negotiated another protocol by
// ALPN (h2, or acme-tls/1 for a certificate challenge) is net/http's from
// its first byte.
//
// Use NewServer, then Serve or ServeTLS on listeners; Shutdown or Close it
// before the Proxy's Close.
type Server struct {
	p       *Proxy
	opts    ServerOptions
	handler http.Handler // opts.Handler, or p
	hs      *http.Server
	handoff *handoffListener

	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[*frontConn]struct{}
	closing atomic.Bool
	// lingering: Shutdown lets idle connections carry one more request
	// (ServerOptions.CloseIdleAfter).
	lingering atomic.Bool
	hsConns   atomic.Int64   // connections net/http serves (handed off)
	wg        sync.WaitGroup // connection goroutines
	hsDone    chan struct{}  // the net/http server's Serve returned
}

// NewServer returns a Server for p; opts tune both the front and the
// net/http server behind it.
func (p *Proxy) NewServer(opts ServerOptions) *Server {
	opts = opts.withDefaults()
	h := opts.Handler
	if h == nil {
		h = p
	}
	s := &Server{
		p:       p,
		opts:    opts,
		handler: h,
		handoff: newHandoffListener(),
		lns:     map[net.Listener]struct{}{},
		conns:   map[*frontConn]struct{}{},
		hsDone:  make(chan struct{}),
	}
	hopts := opts
	hopts.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.closing.Load() {
			// Shutting down: this is the connection's last request, and
			// the client is told so (net/http closes after the response).
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
	s.hs = p.HTTPServer(hopts)
	state := s.hs.ConnState
	s.hs.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.hsConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.hsConns.Add(-1)
		}
		state(c, st)
	}
	go func() {
		defer close(s.hsDone)
		_ = s.hs.Serve(s.handoff)
	}()
	return s
}

// HTTPServer returns the net/http server behind s (to read its settings).
func (s *Server) HTTPServer() *http.Server { return s.hs }

// Serve accepts connections on ln until Shutdown or Close (then it returns
// http.ErrServerClosed) or ln fails.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, nil) }

// ServeTLS is Serve for a listener of TLS connections: cfg (which must
// provide a certificate) is used as it is, except that NextProtos defaults
// to h2 and http/1.1. HTTP/2 is served by net/http (http.Server's
// defaults); the handler sees Request.TLS set on every request.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	cfg = cfg.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return s.serve(ln, cfg)
}

func (s *Server) serve(ln net.Listener, tlsConfig *tls.Config) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors and the like: back off, like
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.p.logger.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		fc := &frontConn{s: s, c: c, remote: c.RemoteAddr().String()}
		if tlsConfig != nil {
			fc.tc = tls.Server(c, tlsConfig)
			fc.c = fc.tc
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			_ = c.Close()
			return http.ErrServerClosed
		}
		s.conns[fc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.p.conns.Add(1)
		go fc.serve()
	}
}

// Shutdown stops accepting, closes idle connections, waits for the
// requests in flight to finish (until ctx ends), then shuts the net/http
// server down the same way.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.opts.CloseIdleAfter > 0 {
		s.lingering.Store(true)
	}
	s.stopListening()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	if s.opts.CloseIdleAfter > 0 {
		// Idle keep-alive connections are not closed at once: a client
		// may be sending its next request on one just then, and would see
		// it fail. Each gets one more request, answered with "Connection:
		// close", until CloseIdleAfter; the ones still idle are closed
		// then.
		linger := time.NewTimer(s.opts.CloseIdleAfter)
	wait:
		for {
			s.mu.Lock()
			n := len(s.conns)
			s.mu.Unlock()
			if n == 0 && s.hsConns.Load() == 0 {
				break
			}
			select {
			case <-ctx.Done():
				break wait
			case <-linger.C:
				break wait
			case <-tick.C:
			}
		}
		linger.Stop()
		s.lingering.Store(false)
	}
	for {
		if s.closeIdle() == 0 {
			break
		}
		select {
		case <-ctx.Done():
			_ = s.hs.Shutdown(ctx)
			return ctx.Err()
		case <-tick.C:
		}
	}
	s.wg.Wait()
	err := s.hs.Shutdown(ctx)
	<-s.hsDone
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.stopListening()
	s.mu.Lock()
	for fc := range s.conns {
		_ = fc.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	err := s.hs.Close()
	<-s.hsDone
	return err
}

func (s *Server) stopListening() {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.lns {
		_ = ln.Close()
	}
	s.mu.Unlock()
}

// closeIdle closes the connections waiting for a request and returns how
// many remain (busy ones).
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for fc := range s.conns {
		if fc.idle.Load() {
			_ = fc.c.Close()
		} else {
			n++
		}
	}
	return n
}

// frontConn is one client connection served by the front.
type frontConn struct {
	s       *Server
	c       net.Conn
	tc      *tls.Conn // c, over TLS (nil: plain)
	tls     *tls.ConnectionState
	br      *bufio.Reader
	remote  string
	idle    atomic.Bool // waiting for a request (Shutdown may close it)
	idleSet time.Time   // when the idle deadline was last set (zero: it is not)
	// headDeadline is when the head being read must be complete (zero:
	// none was set, the head was already buffered); a hand-off carries it
	// to net/http.
	headDeadline time.Time
}

// frontReadSize is the front's read buffer: request heads that do not fit
// go to net/http (up to MaxHeaderBytes).
const frontReadSize = 8 << 10

var frontReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, frontReadSize) }}

func (fc *frontConn) serve() {
	s := fc.s
	handedOff := false
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.p.logger.Error("panic serving a request", "remote", fc.remote, "err", err, "stack", string(buf))
		}
		if !handedOff {
			_ = fc.c.Close()
		}
		if fc.br != nil {
			fc.br.Reset(nil)
			frontReaders.Put(fc.br)
		}
		s.mu.Lock()
		delete(s.conns, fc)
		s.mu.Unlock()
		s.p.conns.Add(-1)
		s.wg.Done()
	}()
	if fc.tc != nil {
		var serve bool
		if serve, handedOff = fc.handshake(); !serve {
			return
		}
	}
	fc.br = frontReaders.Get().(*bufio.Reader)
	fc.br.Reset(fc.c)
	first := true
	for {
		// Wait for a request: ReadHeaderTimeout for the first (it starts
		// at accept), IdleTimeout between requests.
		now := time.Now()
		fc.headDeadline = time.Time{}
		if first {
			fc.headDeadline = now.Add(s.opts.ReadHeaderTimeout)
			_ = fc.c.SetReadDeadline(fc.headDeadline)
		} else if s.opts.IdleTimeout < 10*time.Second || now.Sub(fc.idleSet) > time.Second {
			// A long idle deadline moves at most once a second: busy
			// connections skip a deadline update per request, and an idle
			// one is closed at most a second before IdleTimeout.
			_ = fc.c.SetReadDeadline(now.Add(s.opts.IdleTimeout))
			fc.idleSet = now
		}
		fc.idle.Store(true)
		if s.closing.Load() && !s.lingering.Load() {
			return
		}
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		fc.idle.Store(false)
		head, res := fc.readHead(first)
		switch res {
		case headFailed:
			return
		case headTooLarge:
			fc.refuseLargeHead()
			return
		}
		req, ok := fc.parse(head)
		if !ok {
			// Not for the front: net/http takes the connection from this
			// request on, with everything read so far.
			handedOff = fc.handOff()
			return
		}
		_, _ = fc.br.Discard(len(head))
		if !fc.respond(req) {
			return
		}
		first = false
	}
}

// handshake does the TLS handshake, within ReadHeaderTimeout as net/http
// does, and reports whether the front serves the connection (HTTP/1.1), or
// else whether net/http took it (another protocol negotiated by ALPN). A
// client speaking plain HTTP gets net/http's 400 answer.
func (fc *frontConn) handshake() (serve, handedOff bool) {
	s := fc.s
	_ = fc.tc.SetDeadline(time.Now().Add(s.opts.ReadHeaderTimeout))
	if err := fc.tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		s.p.logger.Debug("TLS handshake failed", "remote", fc.remote, "err", err)
		return false, false
	}
	_ = fc.tc.SetWriteDeadline(time.Time{}) // reads get theirs per request
	st := fc.tc.ConnectionState()
	fc.tls = &st
	switch st.NegotiatedProtocol {
	case "", "http/1.1":
		return true, false
	}
	// h2 (net/http's HTTP/2 server), or acme-tls/1 (the certificate
	// manager answered the challenge in the handshake; net/http closes it).
	return false, s.handoff.give(fc.tc)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request, as net/http tells.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// headResult is what readHead found.
type headResult int

const (
	headRead     headResult = iota // a complete head, or one for net/http (too large for the buffer, LF line ends)
	headFailed                     // the client stalled past ReadHeaderTimeout or went away
	headTooLarge                   // over MaxHeaderBytes
)

// readHead returns the buffered request head, through its blank line, once
// it is complete. A head the buffer cannot hold comes back as is (parse
// hands it to net/http, which enforces MaxHeaderBytes on it), unless
// MaxHeaderBytes is no larger than the buffer: then the front enforces it.
func (fc *frontConn) readHead(first bool) ([]byte, headResult) {
	deadlineSet := first
	limit := fc.s.opts.MaxHeaderBytes
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			if i+4 > limit {
				return nil, headTooLarge
			}
			return buf[:i+4], headRead
		}
		if i := bytes.Index(buf, lflf); i >= 0 {
			if i+2 > limit {
				return nil, headTooLarge
			}
			return buf, headRead // LF-only line ends: net/http's
		}
		if i := bytes.Index(buf, lfcrlf); i >= 0 {
			if i+3 > limit {
				return nil, headTooLarge
			}
			return buf, headRead // a bare LF line, then CRLF: net/http's too
		}
		if len(buf) > limit || len(buf) == frontReadSize && limit <= frontReadSize {
			return nil, headTooLarge // cannot end within the limit
		}
		if len(buf) == frontReadSize {
			return buf, headRead // net/http's, with its limit
		}
		if !deadlineSet {
			fc.headDeadline = time.Now().Add(fc.s.opts.ReadHeaderTimeout)
			_ = fc.c.SetReadDeadline(fc.headDeadline)
			fc.idleSet = time.Time{} // the idle deadline must be set again
			deadlineSet = true
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return nil, headFailed
		}
	}
}

// refuseLargeHead answers a head over MaxHeaderBytes as net/http does (a
// 431 and the connection closed), then lets the client read it: the write
// side is closed first, and what the client still sends is read and
// dropped for a moment, so the close does not reset the connection under
// the answer.
func (fc *frontConn) refuseLargeHead() {
	const msg = "431 Request Header Fields Too Large"
	_ = fc.c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(fc.c, "HTTP/1.1 "+msg+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+msg); err != nil {
		return
	}
	if cw, ok := fc.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = fc.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.Copy(io.Discard, fc.c)
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
	lfcrlf   = []byte("\n\r\n")
)

// handOff passes the connection, with the bytes read so far, to the net/http
// server. It reports whether net/http took it. The head's deadline goes
// with it: net/http starts a ReadHeaderTimeout of its own, which must not
// give a client trickling its head a second one.
func (fc *frontConn) handOff() bool {
	prefix := make([]byte, fc.br.Buffered())
	_, _ = fc.br.Read(prefix)
	pc := &prefixConn{Conn: fc.c, prefix: prefix, headDeadline: fc.headDeadline}
	if fc.tls != nil {
		// net/http sets Request.TLS from it.
		return fc.s.handoff.give(&tlsPrefixConn{prefixConn: pc, state: fc.tls})
	}
	return fc.s.handoff.give(pc)
}
