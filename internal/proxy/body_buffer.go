package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
)

// bodyMemoryLimit is how much of a request body of unknown length is
// buffered in memory; the rest goes to a temporary file (nginx's
// client_body_buffer_size).
const bodyMemoryLimit = 64 << 10

var (
	// errBodyTooLarge reports a body over its route's max_body.
	errBodyTooLarge = errors.New("request body over the route's max_body")
	// errBodyRead reports a body the client did not send whole (a broken
	// chunked encoding, a connection that went away).
	errBodyRead = errors.New("read request body")
	// errBodySpool reports a body that could not be stored (the temporary
	// file could not be created or written).
	errBodySpool = errors.New("buffer request body")
	// errBodySpoolFull reports a body that would take the spilled bodies
	// past their budget.
	errBodySpoolFull = errors.New("request body buffer budget used up")
)

// spool is where bodies spill: a directory, and the bytes all spilled
// bodies may hold at once.
type spool struct {
	dir    string
	used   *atomic.Int64
	budget int64
}

// bufferedBody is a request body read whole before the request goes
// upstream: in memory, or in an unlinked temporary file beyond
// bodyMemoryLimit.
type bufferedBody struct {
	mem      []byte
	file     *os.File
	size     int64
	spool    spool
	reserved int64 // of spool's budget
}

// close releases the temporary file, if any (it was unlinked already:
// nothing is left on disk), and its share of the budget.
func (b *bufferedBody) close() {
	if b.file != nil {
		_ = b.file.Close()
		b.file = nil
	}
	if b.reserved > 0 {
		b.spool.used.Add(-b.reserved)
		b.reserved = 0
	}
}

// reserve takes n more bytes of the spool's budget.
func (b *bufferedBody) reserve(n int64) error {
	if b.spool.used.Add(n) > b.spool.budget {
		b.spool.used.Add(-n)
		return errBodySpoolFull
	}
	b.reserved += n
	return nil
}

// reader returns a new reader of the whole body.
func (b *bufferedBody) reader() io.ReadCloser {
	if b.file != nil {
		return io.NopCloser(io.NewSectionReader(b.file, 0, b.size))
	}
	return io.NopCloser(bytes.NewReader(b.mem))
}

// bufferBodyUpTo reads the body of r, whose length is not declared
// (chunked), up to limit bytes, before anything is sent upstream, so an
// app never sees a request over its max_body, even in part. r then carries
// the buffered body with its length declared, replayable (GetBody).
// errBodyTooLarge: the body is larger than limit (the rest is not read).
func bufferBodyUpTo(r *http.Request, limit int64, sp spool) (*bufferedBody, error) {
	b := &bufferedBody{spool: sp}
	// One byte past the limit tells a body over it from one at it.
	src := io.LimitReader(r.Body, limit+1)
	memMax := min(limit+1, bodyMemoryLimit)
	buf := bytes.NewBuffer(make([]byte, 0, min(memMax, 4<<10)))
	n, err := io.Copy(buf, io.LimitReader(src, memMax))
	b.mem, b.size = buf.Bytes(), n
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBodyRead, err)
	}
	if n == memMax && memMax <= limit {
		// More may follow: spill to disk.
		if err := b.reserve(int64(len(b.mem))); err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(sp.dir, "moorage-body-*")
		if err != nil {
			b.close()
			return nil, fmt.Errorf("%w: %w", errBodySpool, err)
		}
		// Unlinked at once: the open file is all there is, and nothing is
		// left behind whatever happens to the process.
		_ = os.Remove(f.Name())
		b.file = f
		if _, err := f.Write(b.mem); err != nil {
			b.close()
			return nil, fmt.Errorf("%w: %w", errBodySpool, err)
		}
		b.mem = nil
		m, err := copyToFile(f, src, b.reserve)
		b.size += m
		if err != nil {
			b.close()
			return nil, err
		}
	}
	if b.size > limit {
		b.close()
		return nil, errBodyTooLarge
	}
	r.Body = b.reader()
	r.GetBody = func() (io.ReadCloser, error) { return b.reader(), nil }
	r.ContentLength = b.size
	r.TransferEncoding = nil
	if b.size == 0 {
		r.Body, r.GetBody = http.NoBody, nil
	}
	return b, nil
}

// copyToFile copies src to f through a pooled buffer, taking each chunk's
// bytes of the budget (reserve) first, and telling a failed read (the
// client's) from a failed write (the disk's).
func copyToFile(f *os.File, src io.Reader, reserve func(int64) error) (int64, error) {
	bp := bodyBuffers.Get()
	defer bodyBuffers.Put(bp)
	var n int64
	for {
		m, rerr := src.Read(bp)
		if m > 0 {
			if err := reserve(int64(m)); err != nil {
				return n, err
			}
			if _, err := f.Write(bp[:m]); err != nil {
				return n, fmt.Errorf("%w: %w", errBodySpool, err)
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("%w: %w", errBodyRead, rerr)
		}
	}
}
