package proxy

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// attempt is a request's state while the proxy serves it: the
// ResponseWriter every handler writes through (it records the status and
// the bytes for the access log and metrics), the targets already tried, the
// error of the last try and the fast path's scratch space. Attempts are
// pooled.
type attempt struct {
	w       http.ResponseWriter
	flusher http.Flusher
	status  int   // final status written (0: none yet)
	bytes   int64 // body bytes written

	err      error // why the last try failed (nothing was written to the client)
	n        int
	tried    [maxTries]tried
	upstream string // ID of the target that answered
	reqID    string
	start    time.Time // when the request arrived
	now      time.Time // when the current try started (start, unless held or retried)

	// Scratch space of the fast path's response parser.
	hdrBuf     []byte
	hdrEntries []hdrEntry
	connTokens [8]string
}

// tried is a target a request already failed on, and the target's health
// generation then: a target that failed and has since come back (its active
// check passed) may be tried again.
type tried struct {
	t   *target
	gen uint32
}

// maxTries bounds the targets one request is sent to.
const maxTries = 8

var attempts = sync.Pool{New: func() any { return new(attempt) }}

func getAttempt(w http.ResponseWriter) *attempt {
	a := attempts.Get().(*attempt)
	a.w = w
	a.flusher, _ = w.(http.Flusher)
	return a
}

func putAttempt(a *attempt) {
	hdrBuf, hdrEntries := a.hdrBuf[:0], a.hdrEntries[:0]
	if cap(hdrBuf) > 16<<10 {
		hdrBuf = nil
	}
	*a = attempt{hdrBuf: hdrBuf, hdrEntries: hdrEntries}
	attempts.Put(a)
}

// failedOn reports whether the request already failed on t (since t last
// came back to health).
func (a *attempt) failedOn(t *target) bool {
	gen := t.healthGen.Load()
	for _, f := range a.tried[:a.n] {
		if f.t == t && f.gen == gen {
			return true
		}
	}
	return false
}

// fail records that the request failed on t.
func (a *attempt) fail(t *target) {
	if a.n < maxTries {
		a.tried[a.n] = tried{t, t.healthGen.Load()}
		a.n++
	}
}

// Header implements http.ResponseWriter.
func (a *attempt) Header() http.Header { return a.w.Header() }

// WriteHeader implements http.ResponseWriter; informational (1xx) statuses
// other than 101 pass through without counting as the answer.
func (a *attempt) WriteHeader(status int) {
	if a.status == 0 && (status >= 200 || status == http.StatusSwitchingProtocols) {
		a.status = status
	}
	a.w.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (a *attempt) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	n, err := a.w.Write(p)
	a.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy reach the server's ReadFrom (sendfile for static
// files).
func (a *attempt) ReadFrom(r io.Reader) (int64, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := a.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{a.w}, r)
	}
	a.bytes += n
	return n, err
}

// Flush implements http.Flusher.
func (a *attempt) Flush() {
	if a.flusher != nil {
		a.flusher.Flush()
	}
}

// Unwrap lets http.ResponseController (Hijack for upgrades, deadlines)
// reach the server's ResponseWriter.
func (a *attempt) Unwrap() http.ResponseWriter { return a.w }
