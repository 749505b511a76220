//go:build linux

package process

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// maxLine is the longest log line; longer output is split.
const maxLine = 64 << 10

// logFile appends lines to an instance log, rotating it by size:
// <id>.log is the current file, <id>.log.1 the newest rotation,
// <id>.log.<keep> the oldest. Each line is
// "<RFC3339Nano UTC time> <stdout|stderr> <text>".
type logFile struct {
	mu      sync.Mutex
	path    string
	maxSize int64
	keep    int
	f       *os.File
	size    int64
}

func openLogFile(path string, maxSize int64, keep int) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	l := &logFile{path: path, maxSize: maxSize, keep: keep}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
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

// rotatedName returns the name of rotation n (0: the current file).
func rotatedName(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}

func (l *logFile) rotate() error {
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
	_ = os.Remove(rotatedName(l.path, l.keep))
	for n := l.keep - 1; n >= 0; n-- {
		err := os.Rename(rotatedName(l.path, n), rotatedName(l.path, n+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return l.open()
}

// writeLine appends one line. Errors are dropped after being counted: a
// full disk must not stop the instance.
func (l *logFile) writeLine(t time.Time, stream string, text []byte) {
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

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// pumpLines reads r line by line until EOF and calls fn with each line
// (without its newline or a trailing CR). Lines longer than maxLine are
// split; a final partial line is delivered too.
func pumpLines(r io.Reader, fn func(line []byte)) {
	br := bufio.NewReaderSize(r, maxLine)
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
