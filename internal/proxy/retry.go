package proxy

import (
	"bytes"
	"io"
	"net/http"
)

// isIdempotent reports whether r may be sent again after it may have
// reached an app: GET, HEAD, OPTIONS and TRACE by definition, any other
// method when the client marks it with an Idempotency-Key. A POST without
// one is never sent twice.
func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return r.Header["Idempotency-Key"] != nil
}

// maxReplayBody is the largest body the proxy keeps in memory so an
// idempotent request can be retried on another instance.
const maxReplayBody = 64 << 10

// bufferBody reads an idempotent request's small body into memory so it can
// be sent again, and reports whether r can be replayed. Bodies of unknown or
// larger size stream through once (a failed dial still retries them:
// nothing was read).
func bufferBody(r *http.Request, maxBody int64) bool {
	if r.GetBody != nil {
		return true // buffered already (bufferBodyUpTo)
	}
	n := r.ContentLength
	if n <= 0 || n > maxReplayBody || (maxBody > 0 && n > maxBody) {
		return n == 0
	}
	buf := make([]byte, n)
	got, err := io.ReadFull(r.Body, buf)
	if err != nil {
		// The client's body broke off: send what came and the error, the
		// upstream request fails like it would have.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf[:got]), errReader{err}))
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return true
}

// rewindBody restarts a buffered body for another try.
func rewindBody(r *http.Request) {
	if r.GetBody != nil {
		r.Body, _ = r.GetBody()
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
