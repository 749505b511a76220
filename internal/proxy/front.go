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
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
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

// parse parses a complete request head, and reports whether the front
// serves it: HTTP/1.1, origin-form target, no body (no Transfer-Encoding,
// one Content-Length of 0 or none), no Upgrade or Expect, one valid Host,
// and only well-formed header fields (CRLF line ends, token names, no
// control characters in values, no line folding). The request is the one
// net/http would read from the same bytes (FuzzFrontMatchesNetHTTP): Host
// is not in the header, and Pragma: no-cache implies Cache-Control.
func (fc *frontConn) parse(head []byte) (*http.Request, bool) {
	if !bytes.HasSuffix(head, crlfcrlf) {
		return nil, false
	}
	// One allocation holds every string of the request.
	hs := string(head[:len(head)-4])
	line, rest, _ := strings.Cut(hs, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !validMethod(method) || len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return nil, false
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}

	n := strings.Count(rest, "\r\n") + 1
	if rest == "" {
		n = 0
	}
	h := make(http.Header, n)
	values := make([]string, n)
	host, hosts := "", 0
	closeConn, sawLength := false, false
	i := 0
	for rest != "" {
		var field string
		field, rest, _ = strings.Cut(rest, "\r\n")
		colon := strings.IndexByte(field, ':')
		if colon <= 0 {
			return nil, false // also a line starting with a space: folding
		}
		key, ok := canonicalRequestKey(field[:colon])
		if !ok {
			return nil, false
		}
		v := trimOWS(field[colon+1:])
		for j := 0; j < len(v); j++ {
			if c := v[j]; (c < ' ' && c != '\t') || c == 0x7f {
				return nil, false
			}
		}
		switch key {
		case "Host":
			host, hosts = v, hosts+1
			continue
		case "Content-Length":
			if v != "0" || sawLength {
				return nil, false
			}
			sawLength = true
		case "Transfer-Encoding", "Upgrade", "Expect", "Te", "Http2-Settings":
			return nil, false
		case "Connection":
			for tok := range strings.SplitSeq(v, ",") {
				tok = strings.TrimSpace(tok)
				switch {
				case strings.EqualFold(tok, "close"):
					closeConn = true
				case strings.EqualFold(tok, "keep-alive"), tok == "":
				default:
					return nil, false // upgrades, or hop-by-hop fields to strip: net/http's
				}
			}
		}
		values[i] = v
		if prev, ok := h[key]; ok {
			h[key] = append(prev, v)
		} else {
			h[key] = values[i : i+1 : i+1]
		}
		i++
	}
	if hosts != 1 || !validHost(host) {
		return nil, false
	}
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = noCache // as net/http does (HTTP/1.0 caches)
	}
	return &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		Close:      closeConn,
		RemoteAddr: fc.remote,
		RequestURI: target,
		TLS:        fc.tls,
	}, true
}

// validMethod reports whether m is a token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTokenChar(m[i]) {
			return false
		}
	}
	return true
}

// validHost accepts the Host values net/http accepts: a non-empty name or
// address with an optional port, in a conservative character set.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// canonicalRequestKey is canonicalKey for request header names.
func canonicalRequestKey(k string) (string, bool) {
	if c, ok := commonHeaders[k]; ok {
		return c, true
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return "", false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(k), true
}

// respond serves one request and reports whether the connection stays
// open for the next.
func (fc *frontConn) respond(req *http.Request) (keep bool) {
	w := frontResponses.Get().(*frontResponse)
	w.reset(fc, req)
	defer func() {
		if err := recover(); err != nil {
			// The handler gave up mid-response (http.ErrAbortHandler: the
			// upstream failed): the client must see the connection close
			// rather than a short response that looks whole.
			w.release()
			panic(err)
		}
		w.release()
	}()
	fc.s.handler.ServeHTTP(w, req)
	// Whether the server is closing is not read again here: a response
	// whose head went out before Shutdown began did not announce the
	// connection's end, so the client may send its next request on it;
	// the serve loop then closes it if idle, or lets it carry that one
	// request while Shutdown lingers (CloseIdleAfter). Reading it here
	// closed such a connection unannounced, and that next request failed.
	return w.finish() && !req.Close
}

// frontResponse is the http.ResponseWriter of the front. Its header map is
// reused across requests (a handler must not touch it after returning). A
// body written without a Content-Length is held back while it is small, so
// a handler that finishes quickly gets a Content-Length rather than chunks,
// as with net/http.
type frontResponse struct {
	fc      *frontConn
	bw      *bufio.Writer
	req     *http.Request
	header  http.Header
	status  int
	started bool  // the head was written
	length  int64 // declared Content-Length, -1: none
	written int64
	chunked bool
	noBody  bool
	close   bool   // close the connection after the response
	pending []byte // body held back before the head (no Content-Length yet)
	err     error
	gone    bool // the client went away while the request was held: write nothing
}

// maxPending is how much body without a declared length is held back.
const maxPending = 2 << 10

var frontResponses = sync.Pool{New: func() any {
	return &frontResponse{header: make(http.Header, 16), bw: bufio.NewWriterSize(nil, 4<<10), pending: make([]byte, 0, maxPending)}
}}

func (w *frontResponse) reset(fc *frontConn, req *http.Request) {
	w.fc, w.req = fc, req
	w.bw.Reset(fc.c)
	w.status, w.started, w.length, w.written = 0, false, -1, 0
	w.chunked, w.noBody, w.close, w.err, w.gone = false, false, req.Close, nil, false
	w.pending = w.pending[:0]
}

func (w *frontResponse) release() {
	clear(w.header)
	w.bw.Reset(nil)
	w.fc, w.req = nil, nil
	frontResponses.Put(w)
}

// Header implements http.ResponseWriter.
func (w *frontResponse) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational statuses are
// not sent (nothing the front serves produces them).
func (w *frontResponse) WriteHeader(status int) {
	if w.status != 0 || status < 200 {
		return
	}
	if status > 999 {
		panic("proxy: invalid status code " + strconv.Itoa(status))
	}
	w.status = status
}

// Write implements http.ResponseWriter.
func (w *frontResponse) Write(p []byte) (int, error) {
	if !w.started {
		if w.header["Content-Length"] == nil && len(w.pending)+len(p) <= maxPending {
			if w.status == 0 {
				w.status = http.StatusOK
			}
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.writeHead(false)
		if err := w.writePending(); err != nil {
			return 0, err
		}
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	n := len(p)
	var errLen error
	if w.length >= 0 && w.written+int64(n) > w.length {
		n = int(w.length - w.written)
		errLen = http.ErrContentLength
	}
	if n == 0 {
		return 0, errLen
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(n), 16))
		w.bw.WriteString("\r\n")
	}
	m, err := w.bw.Write(p[:n])
	if w.chunked && err == nil {
		_, err = w.bw.WriteString("\r\n")
	}
	w.written += int64(m)
	if err != nil {
		w.fail(err)
		return m, err
	}
	return m, errLen
}

// writePending writes the held-back body after the head.
func (w *frontResponse) writePending() error {
	if len(w.pending) == 0 {
		return nil
	}
	p := w.pending
	w.pending = w.pending[:0]
	_, err := w.Write(p)
	return err
}

// Flush implements http.Flusher.
func (w *frontResponse) Flush() {
	if !w.started {
		w.writeHead(false)
		_ = w.writePending()
	}
	if w.err == nil {
		if err := w.bw.Flush(); err != nil {
			w.fail(err)
		}
	}
}

func (w *frontResponse) fail(err error) {
	w.err = err
	w.close = true
}

// writeHead writes the status line and the header. final: the handler
// returned without writing a body, which then has length 0.
func (w *frontResponse) writeHead(final bool) {
	w.started = true
	if w.fc.s.closing.Load() {
		w.close = true // the connection's last response: the client is told
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.header
	w.noBody = w.req.Method == http.MethodHead || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 && len(cl) == 1 {
			w.length = n
		} else {
			delete(h, "Content-Length")
		}
	}
	delete(h, "Transfer-Encoding")
	delete(h, "Connection")
	if w.length < 0 && !w.noBody {
		if final && !hasTrailers(h) {
			// The handler is done: the held-back body is all of it.
			w.length = int64(len(w.pending))
			if w.length == 0 {
				h["Content-Length"] = zeroLength
			} else {
				h["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
			}
		} else {
			w.chunked = true
		}
	}
	bw := w.bw
	bw.WriteString(statusLine(w.status))
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || !validFieldName(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if h["Date"] == nil {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

var (
	zeroLength = []string{"0"}
	noCache    = []string{"no-cache"}
)

// hasTrailers reports whether a handler set trailers (http.TrailerPrefix),
// which only a chunked body can carry.
func hasTrailers(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// finish completes the response and reports whether the connection can
// serve another request.
func (w *frontResponse) finish() bool {
	if w.gone {
		return false
	}
	if !w.started {
		w.writeHead(true)
		_ = w.writePending()
	}
	if w.err != nil {
		return false
	}
	if w.chunked {
		w.bw.WriteString("0\r\n")
		for k, vs := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && validFieldName(name) {
				for _, v := range vs {
					w.bw.WriteString(name)
					w.bw.WriteString(": ")
					writeFieldValue(w.bw, v)
					w.bw.WriteString("\r\n")
				}
			}
		}
		w.bw.WriteString("\r\n")
	}
	if w.length >= 0 && w.written < w.length && !w.noBody {
		w.close = true // a short body: the client can only tell by the close
	}
	if err := w.bw.Flush(); err != nil {
		return false
	}
	return !w.close
}

// watchClient watches the connection for the client going away while the
// request waits (held until a target is healthy): front requests have no
// context that would tell, and net/http's way (a read in the background
// for every request) is what the front saves. The watch is one read of
// the connection, which the serving goroutine does not read meanwhile (a
// front request has no body); gone is closed when it fails (the client
// closed or reset the connection; with pipelined bytes it cannot tell,
// and they stay buffered). stop ends the watch and returns once it has
// ended; after a gone, the response writes nothing and the connection
// closes.
func (w *frontResponse) watchClient() (gone <-chan struct{}, stop func()) {
	fc := w.fc
	ch := make(chan struct{})
	exited := make(chan struct{})
	var stopping atomic.Bool
	_ = fc.c.SetReadDeadline(time.Time{}) // the hold is bounded by its timeout
	go func() {
		defer close(exited)
		if _, err := fc.br.Peek(1); err != nil && !stopping.Load() {
			w.gone = true // read by the serving goroutine after stop
			close(ch)
		}
	}()
	return ch, func() {
		stopping.Store(true)
		_ = fc.c.SetReadDeadline(aLongTimeAgo) // ends the read
		<-exited
		fc.idleSet = time.Time{} // the next wait sets its deadline again
	}
}

// aLongTimeAgo is a deadline that has passed: it ends a pending read.
var aLongTimeAgo = time.Unix(1, 0)

// validFieldName reports whether k can be written as a header name.
func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return false
		}
	}
	return true
}

// writeFieldValue writes v with CR and LF replaced by spaces (no response
// splitting, whatever a handler put in the header).
func writeFieldValue(bw *bufio.Writer, v string) {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			break
		}
	}
	bw.WriteString(v)
}

// trimOWS trims the optional white space around a header value.
func trimOWS(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// statusLines are the status lines of the codes 100–599.
var statusLines = func() (lines [600]string) {
	for code := 100; code < 600; code++ {
		text := http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
		lines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
	}
	return lines
}()

func statusLine(code int) string {
	if code >= 100 && code < 600 {
		return statusLines[code]
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n"
}

// httpDate returns the current time in the Date header's format, formatted
// once per second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &cachedDate{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]

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
