package seam

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/logs"
)

func TestLife(t *testing.T) {
	var l Life
	if err := l.Check(); err != nil {
		t.Fatalf("open: %v", err)
	}
	release := make(chan struct{})
	var done atomic.Bool
	if !l.Go(func() { <-release; done.Store(true) }) {
		t.Fatal("Go refused while open")
	}
	ended := make(chan bool)
	cancelled := false
	go func() { ended <- l.End(func() { cancelled = true; close(release) }) }()
	if !<-ended || !cancelled || !done.Load() {
		t.Fatalf("End returned before its goroutine (cancelled %v, done %v)", cancelled, done.Load())
	}
	if err := l.Check(); !errors.Is(err, runtime.ErrRuntimeClosed) {
		t.Fatalf("closed: %v", err)
	}
	if l.Go(func() { t.Error("ran after End") }) {
		t.Fatal("Go started a goroutine after End")
	}
	if l.End(func() { t.Error("cancelled twice") }) || l.Shut() {
		t.Fatal("a second End or Shut reported the life open")
	}
	l.Wait()
}

func TestStopper(t *testing.T) {
	var ids IDLocks
	var closed error
	var stopped []string
	s := NewStopper(&ids, func() error { return closed }, func(ctx context.Context, id string) error {
		stopped = append(stopped, id)
		// The instance's lock is held: another holder must wait.
		got := make(chan struct{})
		go func() { ids.Lock(id)(); close(got) }()
		select {
		case <-got:
			t.Errorf("the lock of %s was free during stop", id)
		case <-time.After(20 * time.Millisecond):
		}
		return nil
	})
	if err := s.Stop(context.Background(), "a-web-1"); err != nil || len(stopped) != 1 || stopped[0] != "a-web-1" {
		t.Fatalf("Stop: %v, stopped %v", err, stopped)
	}
	closed = runtime.ErrRuntimeClosed
	if err := s.Stop(context.Background(), "a-web-2"); !errors.Is(err, runtime.ErrRuntimeClosed) || len(stopped) != 1 {
		t.Fatalf("Stop when closed: %v, stopped %v", err, stopped)
	}
}

func TestWriters(t *testing.T) {
	if WriterOr(nil) != io.Discard {
		t.Fatal("WriterOr(nil) is not io.Discard")
	}
	var b strings.Builder
	if WriterOr(&b) != &b {
		t.Fatal("WriterOr(w) is not w")
	}
	f := &failing{}
	d := &DrainWriter{W: f}
	for range 3 {
		if n, err := d.Write([]byte("abc")); n != 3 || err != nil {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	if len(f.writes) != 1 {
		t.Fatalf("a failing writer was written %d times, want once", len(f.writes))
	}
	d = &DrainWriter{W: &b}
	d.Write([]byte("x"))
	d.Write([]byte("y"))
	if b.String() != "xy" {
		t.Fatalf("wrote %q", b.String())
	}
}

func TestReadLog(t *testing.T) {
	ok := func() error { return nil }
	ctx := context.Background()
	var lines []string
	fn := func(l runtime.LogLine) error { lines = append(lines, l.Text); return nil }
	never := func() (string, func() bool) { t.Error("find called"); return "", nil }
	if err := ReadLog(ctx, func() error { return runtime.ErrRuntimeClosed }, "a-web-1", runtime.LogOptions{}, nil, fn, never); !errors.Is(err, runtime.ErrRuntimeClosed) {
		t.Fatalf("closed: %v", err)
	}
	if err := ReadLog(ctx, ok, "../x", runtime.LogOptions{}, nil, fn, never); !errors.Is(err, runtime.ErrNotFound) || err.Error() != "logs of ../x: "+runtime.ErrNotFound.Error() {
		t.Fatalf("a bad id: %v", err)
	}
	none := func() (string, func() bool) { return "", nil }
	if err := ReadLog(ctx, ok, "a-web-1", runtime.LogOptions{}, nil, fn, none); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("no log: %v", err)
	}

	dir := t.TempDir()
	path := LogPath(dir, "a", "a-web-1")
	lf, err := logs.Open(path, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	lf.WriteLine(time.Now(), "stdout", []byte("one"))
	lf.WriteLine(time.Now(), "stdout", []byte("two"))
	lf.Close()
	// Follow ends once live says the instance is gone.
	asked := 0
	gone := func() (string, func() bool) { return path, func() bool { asked++; return false } }
	if err := ReadLog(ctx, ok, "a-web-1", runtime.LogOptions{Follow: true}, nil, fn, gone); err != nil || strings.Join(lines, ",") != "one,two" || asked == 0 {
		t.Fatalf("follow: %v, lines %q, live asked %d times", err, lines, asked)
	}

	// ReadLogs finds it under any app and asks exists at most every half
	// second.
	lines = nil
	calls := 0
	exists := func(context.Context) bool { calls++; return calls < 2 }
	start := time.Now()
	if err := ReadLogs(ctx, ok, dir, "a-web-1", runtime.LogOptions{Follow: true, Tail: 1}, exists, nil, fn); err != nil || strings.Join(lines, ",") != "two" {
		t.Fatalf("ReadLogs: %v, lines %q", err, lines)
	}
	if took := time.Since(start); calls != 2 || took < 500*time.Millisecond {
		t.Fatalf("exists asked %d times in %s", calls, took)
	}
	os.Remove(path)
	if err := ReadLogs(ctx, ok, filepath.Join(dir, "elsewhere"), "a-web-1", runtime.LogOptions{}, exists, nil, fn); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("ReadLogs without a log: %v", err)
	}
}
