package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
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

// hop-by-hop request headers, not forwarded (plus those Connection lists).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Proxy-Authenticate", "Proxy-Authorization":
		return true
	}
	return false
}

// writeRequestHead writes r's request line and headers for the upstream:
// hop-by-hop headers dropped, X-Forwarded-For appended to, X-Forwarded-Proto
// and -Host set, the request ID set, the client's Forwarded dropped: the
// same fields the slow path's ReverseProxy (target.rewrite) sends.
func writeRequestHead(bw *bufio.Writer, r *http.Request, reqID string, tokens []string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if p := r.URL.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")

	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && len(tokens) < cap(tokens) {
				tokens = append(tokens, tok)
			}
		}
	}
	for k, vs := range r.Header {
		switch k {
		case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", headerRequestID, "Host":
			continue // set below; Forwarded, from a client, is not trusted (as on the slow path)
		}
		if hopByHop(k) || listed(tokens, k) || mimicsProxyHeader(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		host = h
	}
	bw.WriteString(host)
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if reqID != "" {
		bw.WriteString(headerRequestID + ": ")
		bw.WriteString(reqID)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// mimicsProxyHeader reports whether a client's header name reads as one of
// those the proxy sets (X-Forwarded-For, -Proto, -Host, X-Request-Id) once
// "_" is taken for "-", as CGI and WSGI servers do (X_Forwarded_For and
// X-Forwarded-For both become HTTP_X_FORWARDED_FOR): such fields are
// dropped, not forwarded, so a client cannot pass itself off as the proxy.
func mimicsProxyHeader(k string) bool {
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	for _, name := range [...]string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", headerRequestID} {
		if len(k) == len(name) && equalFoldDash(k, name) {
			return true
		}
	}
	return false
}

// equalFoldDash compares header names case-insensitively, with "_" and
// "-" alike.
func equalFoldDash(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func listed(tokens []string, k string) bool {
	for _, t := range tokens {
		if strings.EqualFold(t, k) {
			return true
		}
	}
	return false
}

// hdrEntry is a response header parsed into the attempt's scratch buffer.
type hdrEntry struct {
	key        string
	start, end int
}

// respHead is what the proxy needs of a response head.
type respHead struct {
	status   int
	length   int64 // -1: unknown
	chunked  bool
	close    bool // the connection cannot be reused
	noBody   bool
	gotBytes bool // anything of the response was read
}

// readResponseHead parses the head of the response to a request with the
// given method (skipping 1xx ones) into a: the headers to forward go to
// a.hdrBuf/a.hdrEntries. Interim and final heads share one size limit.
func readResponseHead(a *attempt, br *bufio.Reader, method string) (respHead, error) {
	var hd respHead
	total := 0
	for {
		a.hdrBuf, a.hdrEntries = a.hdrBuf[:0], a.hdrEntries[:0]
		line, err := readLine(a, br)
		if len(line) > 0 || err == nil {
			hd.gotBytes = true
		}
		if err != nil {
			return hd, err
		}
		if total += len(line); total > maxResponseHeaderBytes {
			return hd, errResponseTooLarge
		}
		// HTTP/1.x SP 3DIGIT [SP reason]
		if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
			(len(line) > 12 && line[12] != ' ') {
			return hd, fmt.Errorf("%w: status line %q", errBadResponse, truncate(line))
		}
		status := 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return hd, fmt.Errorf("%w: status line %q", errBadResponse, truncate(line))
			}
			status = status*10 + int(c-'0')
		}
		if status < 100 || status > 599 {
			return hd, fmt.Errorf("%w: status %d", errBadResponse, status)
		}
		http10 := line[7] == '0'
		hd = respHead{status: status, length: -1, close: http10, gotBytes: true}
		if err := readHeaders(a, br, &hd, http10, &total); err != nil {
			return hd, err
		}
		if status >= 100 && status < 200 {
			if status == http.StatusSwitchingProtocols {
				return hd, fmt.Errorf("%w: 101 to a request without Upgrade", errBadResponse)
			}
			continue // interim responses (100, 103) are not forwarded
		}
		hd.noBody = method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified
		if method == http.MethodConnect && status < 300 {
			// The app would open a tunnel: the connection is no longer
			// HTTP, and the front has no tunnel to give the client.
			return hd, fmt.Errorf("%w: %d to CONNECT", errBadResponse, status)
		}
		if !hd.noBody && !hd.chunked && hd.length < 0 {
			hd.close = true // the body ends when the upstream closes
		}
		return hd, nil
	}
}

// readLine reads one CRLF- or LF-terminated line without it; lines longer
// than br's buffer are assembled in a's scratch space.
func readLine(a *attempt, br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > maxResponseHeaderBytes {
				return nil, errResponseTooLarge
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readHeaders parses header fields up to the blank line, counting their
// bytes in *total. Hop-by-hop fields are interpreted (framing, Connection)
// and dropped.
func readHeaders(a *attempt, br *bufio.Reader, hd *respHead, http10 bool, total *int) error {
	keepAlive := false
	lengthIdx := -1
	tokens := a.connTokens[:0]
	for {
		line, err := readLine(a, br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if *total += len(line); *total > maxResponseHeaderBytes {
			return errResponseTooLarge
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: obsolete line folding", errBadResponse)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fmt.Errorf("%w: header line %q", errBadResponse, truncate(line))
		}
		key, ok := canonicalKey(line[:colon])
		if !ok {
			return fmt.Errorf("%w: header name %q", errBadResponse, truncate(line[:colon]))
		}
		value := bytes.TrimRight(bytes.TrimLeft(line[colon+1:], " \t"), " \t")
		if !validFieldValue(value) {
			return fmt.Errorf("%w: control character in header %s", errBadResponse, key)
		}
		switch key {
		case "Content-Length":
			n, ok := parseContentLength(value)
			if !ok {
				return fmt.Errorf("%w: Content-Length %q", errBadResponse, truncate(value))
			}
			if hd.length >= 0 && n != hd.length {
				return fmt.Errorf("%w: conflicting Content-Length headers", errBadResponse)
			}
			if hd.length >= 0 {
				continue
			}
			hd.length = n
			lengthIdx = len(a.hdrEntries)
		case "Transfer-Encoding":
			if !bytes.EqualFold(value, []byte("chunked")) || hd.chunked || http10 {
				// HTTP/1.0 has no chunked coding: its framing is faulty
				// (RFC 9112, 6.1).
				return fmt.Errorf("%w: unsupported Transfer-Encoding %q", errBadResponse, truncate(value))
			}
			hd.chunked = true
			continue
		case "Connection":
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					hd.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				case len(tok) > 0:
					tokens = append(tokens, string(tok))
				}
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authenticate":
			continue
		}
		start := len(a.hdrBuf)
		a.hdrBuf = append(a.hdrBuf, value...)
		a.hdrEntries = append(a.hdrEntries, hdrEntry{key: key, start: start, end: len(a.hdrBuf)})
	}
	if http10 && keepAlive {
		hd.close = false
	}
	if hd.chunked && lengthIdx >= 0 {
		// Both: chunked wins (RFC 9112 6.3); the length is dropped and the
		// connection not reused.
		a.hdrEntries = append(a.hdrEntries[:lengthIdx], a.hdrEntries[lengthIdx+1:]...)
		hd.length = -1
		hd.close = true
	}
	if len(tokens) > 0 {
		kept := a.hdrEntries[:0]
		for _, e := range a.hdrEntries {
			if !listed(tokens, e.key) {
				kept = append(kept, e)
			}
		}
		a.hdrEntries = kept
	}
	return nil
}

// setHeaders copies the parsed response headers into h with two
// allocations: one string holding every value, one slice of values.
func (a *attempt) setHeaders(h http.Header) {
	if len(a.hdrEntries) == 0 {
		return
	}
	all := string(a.hdrBuf)
	values := make([]string, len(a.hdrEntries))
	for i, e := range a.hdrEntries {
		values[i] = all[e.start:e.end]
		if prev, ok := h[e.key]; ok {
			h[e.key] = append(prev, values[i])
		} else {
			h[e.key] = values[i : i+1 : i+1]
		}
	}
}

// copyBody copies the response body from br to the client. keep reports
// whether the connection can be reused; rerr is an upstream failure, werr a
// client one.
func copyBody(a *attempt, br *bufio.Reader, hd *respHead) (keep bool, rerr, werr error) {
	switch {
	case hd.noBody:
		return true, nil, nil
	case hd.chunked:
		return copyChunked(a, br)
	case hd.length >= 0:
		n := hd.length
		for n > 0 {
			if br.Buffered() == 0 {
				if _, err := br.Peek(1); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return false, err, nil
				}
			}
			chunk := int(min(int64(br.Buffered()), n))
			p, _ := br.Peek(chunk)
			if _, err := a.Write(p); err != nil {
				return false, nil, err
			}
			_, _ = br.Discard(chunk)
			n -= int64(chunk)
		}
		return true, nil, nil
	default:
		// Until the upstream closes.
		bp := bodyBuffers.Get()
		defer bodyBuffers.Put(bp)
		for {
			n, err := br.Read(bp)
			if n > 0 {
				if _, werr := a.Write(bp[:n]); werr != nil {
					return false, nil, werr
				}
				a.Flush()
			}
			if err == io.EOF {
				return false, nil, nil
			}
			if err != nil {
				return false, err, nil
			}
		}
	}
}

// copyChunked copies a chunked body, flushing every chunk through (server
// sent events, streaming), then its trailers.
func copyChunked(a *attempt, br *bufio.Reader) (keep bool, rerr, werr error) {
	bp := bodyBuffers.Get()
	defer bodyBuffers.Put(bp)
	cr := httputil.NewChunkedReader(br)
	for {
		n, err := cr.Read(bp)
		if n > 0 {
			if _, werr := a.Write(bp[:n]); werr != nil {
				return false, nil, werr
			}
			if br.Buffered() == 0 {
				a.Flush() // nothing more at hand: send what we have
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err, nil
		}
	}
	// Trailers, within the size limit of a head.
	h := a.w.Header()
	total := 0
	for {
		line, err := readLine(a, br)
		if err != nil {
			return false, err, nil
		}
		if len(line) == 0 {
			return true, nil, nil
		}
		if total += len(line); total > maxResponseHeaderBytes {
			return false, errResponseTooLarge, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false, fmt.Errorf("%w: trailer line %q", errBadResponse, truncate(line)), nil
		}
		key, ok := canonicalKey(line[:colon])
		if !ok {
			return false, fmt.Errorf("%w: trailer name %q", errBadResponse, truncate(line[:colon])), nil
		}
		value := bytes.TrimRight(bytes.TrimLeft(line[colon+1:], " \t"), " \t")
		if !validFieldValue(value) {
			return false, fmt.Errorf("%w: control character in trailer %s", errBadResponse, key), nil
		}
		if hopByHop(key) || key == "Content-Length" {
			continue
		}
		h[http.TrailerPrefix+key] = append(h[http.TrailerPrefix+key], string(value))
	}
}

// validFieldValue reports whether a header value has no control
// characters (tabs aside).
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: digits only (no sign,
// no list), as net/http reads it.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// canonicalKey returns the canonical form of a header name, without
// allocating for common ones; ok is false for an invalid name.
func canonicalKey(b []byte) (string, bool) {
	if k, ok := commonHeaders[string(b)]; ok {
		return k, true
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return "", false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(string(b)), true
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// commonHeaders maps common response header names, as sent canonical or in
// lower case, to their canonical form.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Cross-Origin-Opener-Policy",
		"Date", "Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Permissions-Policy",
		"Pragma", "Proxy-Authenticate", "Proxy-Connection", "Referrer-Policy", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Vary",
		"Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Powered-By",
		"X-Request-Id", "X-Xss-Protection", "Server-Timing", "Timing-Allow-Origin",
		// Request headers.
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie",
		"Content-Type", "Dnt", "Expect", "Forwarded", "Host", "Http2-Settings", "Idempotency-Key", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin",
		"Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Upgrade-Insecure-Requests", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Requested-With", "X-Csrftoken",
	} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	// Spellings that differ from the canonical form beyond case.
	m["ETag"] = "Etag"
	m["WWW-Authenticate"] = "Www-Authenticate"
	m["X-Request-ID"] = "X-Request-Id"
	m["X-XSS-Protection"] = "X-Xss-Protection"
	m["TE"] = "Te"
	m["DNT"] = "Dnt"
	m["X-Real-IP"] = "X-Real-Ip"
	m["X-CSRFToken"] = "X-Csrftoken"
	return m
}()

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
