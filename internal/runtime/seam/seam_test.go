package seam

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

func TestIDLocks(t *testing.T) {
	var l IDLocks
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := l.Lock("a")
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if most != 1 || len(l.m) != 0 {
		t.Fatalf("at most %d holders at once, %d locks left", most, len(l.m))
	}
	closed := errors.New("closed")
	if err := l.Do(func() error { return closed }, "a", func() error { t.Fatal("ran after check failed"); return nil }); err != closed {
		t.Fatalf("Do: %v", err)
	}
}

func TestIDLocksStart(t *testing.T) {
	var l IDLocks
	ok := func() error { return nil }
	s := runtime.InstanceSpec{App: "a", Service: "web", Release: "v1", Index: 1, Kind: runtime.KindService}
	valid := func(s *runtime.InstanceSpec) error { return ValidateSpec(s, false) }
	in, err := l.Start(ok, &s, valid, func(id string) (runtime.Instance, error) {
		if len(l.m) != 1 || l.m[id] == nil {
			t.Errorf("the lock of %s is not held during start", id)
		}
		return runtime.Instance{ID: id}, nil
	})
	if err != nil || in.ID != s.ID() || len(l.m) != 0 {
		t.Fatalf("Start: %+v %v, %d locks left", in, err, len(l.m))
	}
	failed := errors.New("no image")
	if _, err := l.Start(ok, &s, valid, func(string) (runtime.Instance, error) { return runtime.Instance{ID: "x"}, failed }); !errors.Is(err, failed) || err.Error() != "start "+s.ID()+": no image" {
		t.Fatalf("a failed start: %v", err)
	}
	bad := s
	bad.Kind = "pet"
	never := func(string) (runtime.Instance, error) {
		t.Error("started an invalid spec")
		return runtime.Instance{}, nil
	}
	if _, err := l.Start(ok, &bad, valid, never); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Fatalf("an invalid spec: %v", err)
	}
	if _, err := l.Start(func() error { return runtime.ErrRuntimeClosed }, &s, valid, never); !errors.Is(err, runtime.ErrRuntimeClosed) {
		t.Fatalf("closed: %v", err)
	}
}

func TestTasks(t *testing.T) {
	var ts Tasks
	ok := func() error { return nil }
	s := runtime.RunSpec{InstanceSpec: runtime.InstanceSpec{App: "a", Service: "migrate", Command: []string{"x"}}}
	end, err := ts.Begin(ok, &s, func(s *runtime.InstanceSpec) error { return ValidateSpec(s, false) })
	if err != nil || s.Kind != runtime.KindTask {
		t.Fatalf("Begin: %v, kind %q", err, s.Kind)
	}
	if _, err := ts.Begin(ok, &s, func(*runtime.InstanceSpec) error { return nil }); !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("second Begin: %v", err)
	}
	end()
	if end, err := ts.Begin(ok, &s, func(*runtime.InstanceSpec) error { return nil }); err != nil {
		t.Fatalf("Begin after end: %v", err)
	} else {
		end()
	}
}

func TestTasksRun(t *testing.T) {
	var ts Tasks
	ok := func() error { return nil }
	valid := func(s *runtime.InstanceSpec) error { return ValidateSpec(s, false) }
	s := runtime.RunSpec{InstanceSpec: runtime.InstanceSpec{App: "a", Service: "migrate", Command: []string{"x"}}}
	code, err := ts.Run(ok, &s, valid, func(id string, fail func(error) (int, error)) (int, error) {
		if id != s.ID() || s.Kind != runtime.KindTask || !ts.m[id] {
			t.Errorf("run of %s (kind %q) not begun", id, s.Kind)
		}
		return fail(errors.New("no image"))
	})
	if code != -1 || err == nil || err.Error() != "run "+s.ID()+": no image" || len(ts.m) != 0 {
		t.Fatalf("a failed run: %d %v, %d left", code, err, len(ts.m))
	}
	if code, err := ts.Run(ok, &s, valid, func(string, func(error) (int, error)) (int, error) { return 3, nil }); code != 3 || err != nil {
		t.Fatalf("a run: %d %v", code, err)
	}
	never := func(string, func(error) (int, error)) (int, error) { t.Error("ran"); return 0, nil }
	if code, err := ts.Run(func() error { return runtime.ErrRuntimeClosed }, &s, valid, never); code != -1 || !errors.Is(err, runtime.ErrRuntimeClosed) {
		t.Fatalf("closed: %d %v", code, err)
	}
	end, _ := ts.Begin(ok, &s, valid)
	defer end()
	if code, err := ts.Run(ok, &s, valid, never); code != -1 || !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("a second one-off with its id: %d %v", code, err)
	}
}

func TestValidateSpec(t *testing.T) {
	good := runtime.InstanceSpec{App: "a", Service: "web", Release: "v1", Index: 1, Kind: runtime.KindService, Mounts: []runtime.Mount{{Name: "data", Target: "/d"}}}
	if err := ValidateSpec(&good, false); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*runtime.InstanceSpec){
		"app":       func(s *runtime.InstanceSpec) { s.App = "../x" },
		"service":   func(s *runtime.InstanceSpec) { s.Service = "a:b" },
		"release":   func(s *runtime.InstanceSpec) { s.Release = ".." },
		"kind":      func(s *runtime.InstanceSpec) { s.Kind = "pet" },
		"port":      func(s *runtime.InstanceSpec) { s.Port = 70000 },
		"volume":    func(s *runtime.InstanceSpec) { s.Mounts = []runtime.Mount{{Name: "a/b", Target: "/d"}} },
		"host path": func(s *runtime.InstanceSpec) { s.Mounts = []runtime.Mount{{Name: "/srv/conf", Target: "/d"}} },
	} {
		s := good
		edit(&s)
		if err := ValidateSpec(&s, false); !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Errorf("%s: %v", name, err)
		}
	}
	s := good
	s.Mounts = []runtime.Mount{{Name: "./conf", Target: "/d"}}
	if err := ValidateSpec(&s, false); err != nil {
		t.Errorf("a directory of the upload (the process runtime's release directory has it): %v", err)
	}
	s.Mounts = []runtime.Mount{{Name: "/srv/conf", Target: "/d"}}
	if err := ValidateSpec(&s, true); err != nil {
		t.Errorf("host path where the runtime mounts them: %v", err)
	}
}

type failing struct{ writes []string }

func (f *failing) Write(p []byte) (int, error) {
	f.writes = append(f.writes, string(p))
	return 0, errors.New("gone")
}

func TestLineWriter(t *testing.T) {
	var b strings.Builder
	lw := &LineWriter{W: &b}
	lw.Write([]byte("one\ntw"))
	lw.Write([]byte("o\nthree"))
	if b.String() != "one\ntwo\n" {
		t.Fatalf("before Flush: %q", b.String())
	}
	lw.Flush()
	if b.String() != "one\ntwo\nthree" {
		t.Fatalf("after Flush: %q", b.String())
	}
	f := &failing{}
	lw = &LineWriter{W: f}
	if n, err := lw.Write([]byte("a\nb\n")); n != 4 || err != nil || len(f.writes) != 1 {
		t.Fatalf("a failing writer: %d %v, %d writes", n, err, len(f.writes))
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 3 * time.Second, Reset: 10 * time.Second}
	var got []time.Duration
	d := time.Duration(0)
	for _, ran := range []time.Duration{0, time.Second, time.Second, time.Second, 11 * time.Second} {
		d = b.Next(d, ran)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	var size int64
	var files int
	mn, mx, reset := 2*time.Minute, time.Second, time.Duration(0)
	OptionDefaults(&size, &files, &mn, &mx, &reset)
	if size != DefaultLogMaxSize || files != DefaultLogMaxFiles || mx != mn || reset != DefaultBackoffReset {
		t.Fatalf("defaults: %d %d %s %s %s", size, files, mn, mx, reset)
	}
}

func TestHandOver(t *testing.T) {
	// The server's user hands its fresh directories over; only root may
	// give them to another user, so without root it hands them to itself.
	me, to := os.Geteuid(), 65534
	if me != 0 {
		to = me
	}
	dir := t.TempDir()
	fresh, full := filepath.Join(dir, "fresh"), filepath.Join(dir, "full")
	os.Mkdir(fresh, 0o750)
	os.Mkdir(full, 0o750)
	os.WriteFile(filepath.Join(full, "f"), nil, 0o644)
	owner := func(p string) uint32 {
		fi, _ := os.Lstat(p)
		return fi.Sys().(*syscall.Stat_t).Uid
	}
	if ch, err := HandOver(full, me, to, to, true); err != nil || ch || owner(full) != uint32(me) {
		t.Fatalf("a volume with content: changed %v, %v, owner %d", ch, err, owner(full))
	}
	if ch, err := HandOver(fresh, me, to, to, true); err != nil || !ch || owner(fresh) != uint32(to) {
		t.Fatalf("a fresh volume: changed %v, %v, owner %d", ch, err, owner(fresh))
	}
	if ch, err := HandOver(fresh, me+1, to, to, false); err != nil || ch || owner(fresh) != uint32(to) {
		t.Fatalf("someone else's: changed %v, %v, owner %d", ch, err, owner(fresh))
	}
}

func TestWaitExit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done, closed := make(chan struct{}), make(chan struct{})
	if exited, err := WaitExit(ctx, closed, done, time.After(time.Millisecond), "a-web-1"); exited || err != nil {
		t.Fatalf("timeout: %v %v", exited, err)
	}
	close(closed)
	if _, err := WaitExit(ctx, closed, done, nil, "a-web-1"); !errors.Is(err, runtime.ErrRuntimeClosed) || !strings.Contains(err.Error(), "stop a-web-1") {
		t.Fatalf("closed: %v", err)
	}
	cancel()
	if _, err := WaitExit(ctx, nil, done, nil, "a-web-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	close(done)
	if exited, err := WaitExit(context.Background(), nil, done, nil, "a-web-1"); !exited || err != nil {
		t.Fatalf("done: %v %v", exited, err)
	}
}
