package logs

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File appends lines to an instance log, rotating it by size: <id>.log is
// the current file, <id>.log.1 the newest rotation, <id>.log.<keep> the
// oldest.
type File struct {
	mu      sync.Mutex
	path    string
	maxSize int64
	keep    int
	f       *os.File
	size    int64
}

// Open opens (creating it and its directory) the log at path for
// appending. maxSize 0 never rotates; keep is how many rotations are kept.
func Open(path string, maxSize int64, keep int) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	l := &File{path: path, maxSize: maxSize, keep: keep}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

func (l *File) rotate() error {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if l.keep <= 0 {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return l.open()
	}
	_ = os.Remove(RotatedName(l.path, l.keep))
	for n := l.keep - 1; n >= 0; n-- {
		err := os.Rename(RotatedName(l.path, n), RotatedName(l.path, n+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return l.open()
}

// WriteLine appends one line. Errors are dropped: a full disk must not
// stop the instance.
func (l *File) WriteLine(t time.Time, stream string, text []byte) {
	buf := make([]byte, 0, len(text)+48)
	buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, text...)
	buf = append(buf, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || (l.maxSize > 0 && l.size > 0 && l.size+int64(len(buf)) > l.maxSize) {
		if err := l.rotate(); err != nil {
			return
		}
	}
	n, _ := l.f.Write(buf)
	l.size += int64(n)
}

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// PumpLines reads r line by line until EOF and calls fn with each line
// (without its newline or a trailing CR). Lines longer than MaxLine are
// split; a final partial line is delivered too.
func PumpLines(r io.Reader, fn func(line []byte)) {
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
				if len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
			}
			fn(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
