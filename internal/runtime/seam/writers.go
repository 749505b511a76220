package seam

import (
	"io"
	"sync"
)

// WriterOr is w, or io.Discard when w is nil: where the output of a
// one-off or an exec goes when nobody reads it.
func WriterOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// DrainWriter writes to W until W fails, then discards, so that a failing
// writer never blocks the stream copied into it. It is safe for concurrent
// use.
type DrainWriter struct {
	W      io.Writer
	mu     sync.Mutex
	failed bool
}

func (d *DrainWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.failed {
		if _, err := d.W.Write(p); err != nil {
			d.failed = true
		}
	}
	return len(p), nil
}
