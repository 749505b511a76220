// The front's response writer: one pooled frontResponse per request.

package proxy

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
