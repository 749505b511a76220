package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// PollInterval is how often a follower looks for new lines.
const PollInterval = 100 * time.Millisecond

// Reader reads the log of one instance.
type Reader struct {
	ID   string // the instance, set on every line
	Base string // its current log file (Path)
	// Live reports whether the instance still exists, so that more lines
	// may come (nil: it does not). Follow stops once it returns false.
	Live func() bool
	// Closed, when closed, ends a follow with runtime.ErrRuntimeClosed.
	Closed <-chan struct{}
}

// Read calls fn for each matching line, oldest first, across the rotated
// files. With Follow it keeps streaming, across rotations, until ctx is done
// or Live reports the instance gone.
func (r Reader) Read(ctx context.Context, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	base := r.Base
	var (
		ring  []runtime.LogLine // the last opts.Tail lines while catching up
		live  bool              // caught up: lines go straight to fn
		count int
	)
	emit := func(b []byte) error {
		l := ParseLine(r.ID, b)
		if !opts.Since.IsZero() && l.Time.Before(opts.Since) {
			return nil
		}
		if live {
			return fn(l)
		}
		if opts.Tail > 0 {
			if len(ring) < opts.Tail {
				ring = append(ring, l)
			} else {
				ring[count%opts.Tail] = l
			}
			count++
			return nil
		}
		return fn(l)
	}
	flushRing := func() error {
		if opts.Tail <= 0 || len(ring) == 0 {
			return nil
		}
		start := 0
		if count > opts.Tail {
			start = count % opts.Tail
		}
		for i := range ring {
			if err := fn(ring[(start+i)%len(ring)]); err != nil {
				return err
			}
		}
		ring = nil
		return nil
	}

	// Hold the current file first, so that a rotation while catching up
	// is noticed, then read the rotations, oldest first.
	cur, _ := openCursor(base)
	defer func() {
		if cur != nil {
			cur.f.Close()
		}
	}()
	for _, p := range Files(base) {
		if p == base {
			continue
		}
		c, err := openCursor(p)
		if err != nil {
			continue
		}
		if cur != nil && os.SameFile(c.fi, cur.fi) {
			c.f.Close()
			continue
		}
		err = c.read(emit, true)
		c.f.Close()
		if err != nil {
			return err
		}
	}
	if cur != nil {
		if err := cur.read(emit, !opts.Follow); err != nil {
			return err
		}
	}
	if err := flushRing(); err != nil {
		return err
	}
	if !opts.Follow {
		return nil
	}
	live = true
	for {
		if cur != nil {
			if err := cur.read(emit, false); err != nil {
				return err
			}
			bst, err := os.Stat(base)
			if err != nil || !os.SameFile(bst, cur.fi) {
				// cur was rotated away: it is complete. Go on with the
				// file that came after it.
				if err := cur.read(emit, true); err != nil {
					return err
				}
				next := nextFile(base, cur.fi)
				cur.f.Close()
				cur = nil
				if next != "" {
					cur, _ = openCursor(next)
				}
				continue
			}
		} else if _, err := os.Stat(base); err == nil {
			cur, _ = openCursor(base)
			continue
		}
		if r.Live == nil || !r.Live() {
			// The instance is gone: nothing more will come.
			if cur != nil {
				return cur.read(emit, true)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.Closed:
			return runtime.ErrRuntimeClosed
		case <-time.After(PollInterval):
		}
	}
}

// Find returns the current log file of instance id under dataDir (any
// app), or "" when it never logged.
func Find(dataDir, id string) string {
	matches, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*", id+".log*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), id+".log")
		if rest == "" || rest[0] == '.' {
			return filepath.Join(filepath.Dir(m), id+".log")
		}
	}
	return ""
}

// Files returns the existing files of a log, oldest first: base.N …
// base.1, base.
func Files(base string) []string {
	var rotated []string
	for n := 1; ; n++ {
		p := RotatedName(base, n)
		if _, err := os.Lstat(p); err != nil {
			break
		}
		rotated = append(rotated, p)
	}
	out := make([]string, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		out = append(out, rotated[i])
	}
	if _, err := os.Lstat(base); err == nil {
		out = append(out, base)
	}
	return out
}

// LastTime returns the time of the last complete line of the log at base
// (the newest file that has one), or the zero time. A writer that resumes
// copying an instance's output uses it to skip what it already wrote.
func LastTime(base string) time.Time {
	files := Files(base)
	for i := len(files) - 1; i >= 0; i-- {
		if t, ok := lastLineTime(files[i]); ok {
			return t
		}
	}
	return time.Time{}
}

func lastLineTime(p string) (time.Time, bool) {
	f, err := os.Open(p)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return time.Time{}, false
	}
	// Lines are at most MaxLine plus their prefix.
	n := min(fi.Size(), int64(MaxLine+128))
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, fi.Size()-n); err != nil && !errors.Is(err, io.EOF) {
		return time.Time{}, false
	}
	buf = bytes.TrimRight(buf, "\n")
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	ts, _, _ := strings.Cut(string(buf), " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, err == nil
}

// nextFile returns the file that follows the one described by fi: the
// next newer one, or the oldest one left when fi's file was rotated out
// (then every remaining file is newer).
func nextFile(base string, fi os.FileInfo) string {
	files := Files(base)
	for i, p := range files {
		st, err := os.Stat(p)
		if err == nil && os.SameFile(st, fi) {
			if i+1 < len(files) {
				return files[i+1]
			}
			return ""
		}
	}
	if len(files) > 0 {
		return files[0]
	}
	return ""
}

// cursor reads complete lines from a growing file.
type cursor struct {
	f       *os.File
	fi      os.FileInfo
	pending []byte
	buf     []byte
}

func openCursor(p string) (*cursor, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &cursor{f: f, fi: fi, buf: make([]byte, 32<<10)}, nil
}

// read calls emit for each complete line up to the end of the file. With
// final, a trailing partial line is emitted too.
func (c *cursor) read(emit func([]byte) error, final bool) error {
	for {
		n, err := c.f.Read(c.buf)
		if n > 0 {
			data := make([]byte, 0, len(c.pending)+n)
			data = append(append(data, c.pending...), c.buf[:n]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if err := emit(data[:i]); err != nil {
					return err
				}
				data = data[i+1:]
			}
			c.pending = data
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			if final && len(c.pending) > 0 {
				p := c.pending
				c.pending = nil
				return emit(p)
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ParseLine parses "<RFC3339Nano time> <stream> <text>" (a line without a
// time is stdout text).
func ParseLine(id string, b []byte) runtime.LogLine {
	s := string(b)
	ts, rest, _ := strings.Cut(s, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return runtime.LogLine{Instance: id, Stream: "stdout", Text: s}
	}
	stream, text, _ := strings.Cut(rest, " ")
	return runtime.LogLine{Time: t, Instance: id, Stream: stream, Text: text}
}
