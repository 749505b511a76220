//go:build linux

package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/runtime/seam"
	"github.com/moorage/moorage/internal/spec"
)

const helperEnv = "MOORAGE_PROCESS_TEST_HELPER"

func TestMain(m *testing.M) {
	MaybeRunShim()
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperMain(dir))
	}
	if app := os.Getenv(appUserHelperEnv); app != "" {
		os.Exit(appUserHelper(app))
	}
	// Shims are this test binary: under -race, do not let each of them
	// sleep a second at exit (the race runtime's default).
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	code := m.Run()
	if n := killLeakedShims(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d shim(s) of this test binary were still running\n", n)
		code = 1
	}
	os.Exit(code)
}

// killLeakedShims kills the shims of this test binary that are still
// running and counts them.
func killLeakedShims() int {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range allProcs() {
		if p.dead() {
			continue
		}
		target, _ := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe")
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline")
		if target == exe && bytes.HasPrefix(cmdline, []byte("moorage-shim\x00")) {
			_ = syscall.Kill(-p.PID, syscall.SIGKILL) // its session's groups
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// testLogger logs through t until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func options(t *testing.T, dir string) Options {
	return Options{
		DataDir:    dir,
		Logger:     testLogger(t),
		BackoffMin: 100 * time.Millisecond,
		BackoffMax: time.Second,
	}
}

func openRuntime(t *testing.T, o Options) *Runtime {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatalf("new runtime: %v", err)
	}
	return r
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		Name: Name,
		New: func(t *testing.T, dir string) runtime.Runtime {
			return openRuntime(t, options(t, dir))
		},
		AppBinary: func(a runtime.Artifact) string { return filepath.Join(a.Ref, "app") },
	})
}

// fixture is a runtime on a fresh data dir, with an artifact that is just
// a directory: these tests run sh and sleep.
type fixture struct {
	t   *testing.T
	dir string
	rt  *Runtime
	art runtime.Artifact
	ctx context.Context
}

func newFixture(t *testing.T, edit ...func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	o := options(t, dir)
	for _, fn := range edit {
		fn(&o)
	}
	f := &fixture{t: t, dir: dir, rt: openRuntime(t, o), ctx: context.Background()}
	art := filepath.Join(dir, "releases", "app", "v1")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	f.art = runtime.Artifact{Runtime: Name, Ref: art, Workdir: "/app"}
	t.Cleanup(func() { f.cleanup() })
	return f
}

// cleanup removes every instance (with whatever runtime is current).
func (f *fixture) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if f.rt.life.Check() != nil {
		f.rt = openRuntime(f.t, options(f.t, f.dir))
	}
	ins, _ := f.rt.List(ctx, runtime.Filter{})
	for _, in := range ins {
		if err := f.rt.Remove(ctx, in.ID); err != nil {
			f.t.Errorf("cleanup: %v", err)
		}
	}
	f.rt.Close()
}

// spec runs script with sh; its $ are the shell's, not expanded by the
// runtime.
func (f *fixture) spec(service string, script string) runtime.InstanceSpec {
	return runtime.InstanceSpec{
		App: "app", Service: service, Release: "v1", Index: 1, Kind: runtime.KindService,
		Artifact: f.art, Command: []string{"sh", "-c", strings.ReplaceAll(script, "$", "$$")},
		StopSignal: syscall.SIGTERM, StopTimeout: 5 * time.Second,
	}
}

func (f *fixture) start(s runtime.InstanceSpec) runtime.Instance {
	f.t.Helper()
	in, err := f.rt.Start(f.ctx, s)
	if err != nil {
		f.t.Fatalf("start: %v", err)
	}
	return in
}

func (f *fixture) list(id string) runtime.Instance {
	f.t.Helper()
	ins, err := f.rt.List(f.ctx, runtime.Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, in := range ins {
		if in.ID == id {
			return in
		}
	}
	f.t.Fatalf("%s not listed", id)
	return runtime.Instance{}
}

func (f *fixture) state(id string) shimState {
	f.t.Helper()
	var st shimState
	if err := readJSON(filepath.Join(f.rt.instanceDir(id), stateFile), &st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logTexts(t *testing.T, rt *Runtime, id string) []string {
	t.Helper()
	var out []string
	err := rt.Logs(context.Background(), id, runtime.LogOptions{}, func(l runtime.LogLine) error {
		out = append(out, l.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func nextEvent(t *testing.T, ch <-chan runtime.InstanceEvent, id string, typ runtime.EventType) runtime.InstanceEvent {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case ev := <-ch:
			if ev.Instance == id && ev.Type == typ {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s event for %s", typ, id)
		}
	}
}

func TestSecretsNeverOnDisk(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret := fmt.Sprintf("s3cr3t-%d-%d", os.Getpid(), time.Now().UnixNano())
	// The program prints the secret's length, never the secret, and
	// crashes: the restarted program must get it again from memory.
	s := f.spec("web", `echo "len=${#SECRET} arg=${#1}"; sleep 0.3; exit 3`)
	s.Command = append(s.Command, "sh", "$SECRET")
	s.Env = map[string]string{"SECRET": secret}
	events := f.rt.Events(f.ctx)
	f.start(s)
	nextEvent(t, events, s.ID(), runtime.EventRestart)
	want := fmt.Sprintf("len=%d arg=%d", len(secret), len(secret))
	waitFor(t, "two runs to log the secret's length", func() bool {
		n := 0
		for _, l := range logTexts(t, f.rt, s.ID()) {
			if l == want {
				n++
			}
		}
		return n >= 2
	})
	if err := f.rt.Stop(f.ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the secret is written in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.LogMaxSize = 1000; o.LogMaxFiles = 2 })
	s := f.spec("web", `echo waiting; while [ ! -e go ]; do sleep 0.05; done
i=0; while [ $i -lt 150 ]; do echo "line $i"; i=$((i+1)); [ $((i % 10)) = 0 ] && sleep 0.05; done
echo done; exec sleep 1000`)
	f.start(s)
	id := s.ID()

	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	lines := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- f.rt.Logs(ctx, id, runtime.LogOptions{Follow: true}, func(l runtime.LogLine) error {
			lines <- l.Text
			return nil
		})
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no line followed")
			return ""
		}
	}
	if l := next(); l != "waiting" {
		t.Fatalf("first line %q", l)
	}
	if err := os.WriteFile(filepath.Join(f.art.Ref, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		if l := next(); l != "line "+strconv.Itoa(i) {
			t.Fatalf("followed %q, want line %d", l, i)
		}
	}
	if l := next(); l != "done" {
		t.Fatalf("followed %q, want done", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("follow: %v", err)
	}

	base := seam.LogPath(f.rt.opts.DataDir, "app", id)
	for n := 0; n <= 2; n++ {
		fi, err := os.Stat(rotatedName(base, n))
		if err != nil {
			t.Fatalf("rotation %d: %v", n, err)
		}
		if fi.Size() > 1000 {
			t.Errorf("%s is %d bytes, more than the 1000 allowed", fi.Name(), fi.Size())
		}
	}
	if _, err := os.Stat(rotatedName(base, 3)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a third rotation is kept: %v", err)
	}
	// What is left reads in order, up to the end.
	got := logTexts(t, f.rt, id)
	if len(got) < 10 || got[len(got)-1] != "done" {
		t.Fatalf("logs after rotation: %q", got)
	}
	first, err := strconv.Atoi(strings.TrimPrefix(got[0], "line "))
	if err != nil {
		t.Fatalf("oldest kept line %q", got[0])
	}
	for i, l := range got[:len(got)-1] {
		if l != "line "+strconv.Itoa(first+i) {
			t.Fatalf("line %d is %q, want line %d", i, l, first+i)
		}
	}
	tail := func(n int) []string {
		var out []string
		_ = f.rt.Logs(f.ctx, id, runtime.LogOptions{Tail: n}, func(l runtime.LogLine) error {
			out = append(out, l.Text)
			return nil
		})
		return out
	}
	if got := tail(3); strings.Join(got, ",") != "line 148,line 149,done" {
		t.Errorf("tail 3 = %q", got)
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// 100 KiB without a newline, then a final partial line, flushed when
	// the program exits.
	s := f.spec("web", `head -c 102400 /dev/zero | tr '\0' x; echo; printf partial`)
	f.start(s)
	waitFor(t, "the partial line", func() bool { return slices.Contains(logTexts(t, f.rt, s.ID()), "partial") })
	got := logTexts(t, f.rt, s.ID())[:3]
	if got[2] != "partial" || len(got[0]) != maxLine || len(got[1]) != 102400-maxLine {
		lens := []int{}
		for _, l := range got {
			lens = append(lens, len(l))
		}
		t.Errorf("line lengths %v, want [%d %d 7]", lens, maxLine, 102400-maxLine)
	}
}

func TestCrashBackoff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) {
		o.BackoffMin, o.BackoffMax = 50*time.Millisecond, 200*time.Millisecond
	})
	events := f.rt.Events(f.ctx)
	ctx, cancel := context.WithCancel(f.ctx)
	other := f.rt.Events(ctx) // every subscriber gets every event
	s := f.spec("worker", "exit 7")
	f.start(s)
	ev := nextEvent(t, other, s.ID(), runtime.EventCrash)
	t.Logf("crash event delivered %s after it was recorded", time.Since(ev.Time))
	cancel()
	for range other { // closed once its context is done
	}
	var backoffs []time.Duration
	for len(backoffs) < 4 {
		ev := nextEvent(t, events, s.ID(), runtime.EventCrash)
		if ev.ExitCode != 7 || ev.Message != "exit status 7" {
			t.Errorf("crash event %+v", ev)
		}
		backoffs = append(backoffs, ev.Backoff)
	}
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
	for i := range want {
		if backoffs[i] != want[i] {
			t.Errorf("backoffs %v, want %v", backoffs, want)
			break
		}
	}
	if in := f.list(s.ID()); in.Restarts < 3 {
		t.Errorf("listed %+v, want at least 3 restarts", in)
	}
	if err := f.rt.Stop(f.ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if in := f.list(s.ID()); in.State != runtime.StateExited {
		t.Errorf("after stop: %+v", in)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.spec("web", "")
	s.Command = []string{"no-such-program-anywhere"}
	_, err := f.rt.Start(f.ctx, s)
	if !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("start of a missing program: %v", err)
	}
	s.Command = []string{"./missing"}
	if _, err := f.rt.Start(f.ctx, s); err == nil || !strings.Contains(err.Error(), "./missing: no such file") {
		t.Errorf("start of a missing ./program: %v", err)
	}
	if _, err := os.Stat(f.rt.instanceDir(s.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left its state directory: %v", err)
	}
	s.Command = nil
	if _, err := f.rt.Start(f.ctx, s); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("start without a command: %v", err)
	}
	s.Command = []string{"true"}
	s.Mounts = []runtime.Mount{{Name: "/srv/data", Target: "/data"}}
	if _, err := f.rt.Start(f.ctx, s); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("start with a host path mount: %v", err)
	}
}

func TestPortsAreUnique(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seen := map[int]bool{}
	for i := 1; i <= 5; i++ {
		s := f.spec("web", "exec sleep 1000")
		s.Index = i
		in := f.start(s)
		if in.Port == 0 || seen[in.Port] || in.Addr != "127.0.0.1:"+strconv.Itoa(in.Port) || in.Host != "127.0.0.1" {
			t.Errorf("instance %d: %+v (ports so far %v)", i, in, seen)
		}
		seen[in.Port] = true
	}
	// A given port is used as is.
	s := f.spec("db", `echo "port=$PORT"; exec sleep 1000`)
	s.Kind, s.Release, s.Index, s.Port = runtime.KindAccessory, "", 0, 54321
	in := f.start(s)
	if in.Port != 54321 || in.ID != "app-db" {
		t.Errorf("accessory %+v", in)
	}
	waitFor(t, "the accessory's port", func() bool { return slices.Contains(logTexts(t, f.rt, in.ID), "port=54321") })
	// Accessories run in their own directory.
	if _, err := os.Stat(filepath.Join(f.dir, "accessories", "app", "db")); err != nil {
		t.Error(err)
	}
}

func TestShimKilledOrphanIsKilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	events := f.rt.Events(f.ctx)
	s := f.spec("web", "sleep 1000 & exec sleep 1000")
	in := f.start(s)
	st := f.state(s.ID())
	if !alive(in.PID, 0) || st.ShimPID == 0 {
		t.Fatalf("instance %+v, state %+v", in, st)
	}
	if err := syscall.Kill(st.ShimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events, s.ID(), runtime.EventExit)
	if ev.Message != "supervisor died" {
		t.Errorf("exit event %+v", ev)
	}
	if alive(in.PID, st.PIDStart) || len(groupMembers(st.PGID)) > 0 {
		t.Errorf("the orphaned process group survives")
	}
	if got := f.list(s.ID()); got.State != runtime.StateExited {
		t.Errorf("listed %+v, want exited", got)
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	upload := func(files ...string) string {
		d := t.TempDir()
		for _, p := range files {
			if err := os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, p), []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	sp := &spec.Spec{
		App: "shop",
		Build: &spec.Build{
			Command: spec.Command{"sh", "-c", `echo "building $MOORAGE_APP $MOORAGE_RELEASE $EXTRA"; echo "gorace=[$$GORACE] path=[$$PATH]"; ls data/ > listing`},
			Workdir: "/app",
		},
		Volumes: map[string]*spec.Volume{
			"data":  {Name: "data", Mount: "/app/data"},
			"cache": {Name: "cache", Mount: "/app/var/cache/"},
			"other": {Name: "other", Mount: "/srv/other"},
		},
	}
	if err := os.MkdirAll(filepath.Join(f.dir, "volumes", "shop", "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "volumes", "shop", "data", "kept"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctxDir := upload("main.py", "lib/x.py")
	var out bytes.Buffer
	art, err := f.rt.Build(f.ctx, runtime.BuildRequest{
		App: "shop", Release: "v3", ContextDir: ctxDir, Spec: sp,
		Env: map[string]string{"EXTRA": "extra"}, Output: &out,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	rel := filepath.Join(f.dir, "releases", "shop", "v3")
	if art.Ref != rel || art.Runtime != Name || art.Workdir != "/app" {
		t.Errorf("artifact %+v", art)
	}
	if _, err := os.Stat(ctxDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the context was not moved: %v", err)
	}
	if !strings.Contains(out.String(), "building shop v3 extra") {
		t.Errorf("build output %q", out.String())
	}
	// The build gets a few of the server's variables (PATH), not the rest
	// (GORACE, set by TestMain, stands for the server's own secrets).
	if !strings.Contains(out.String(), "gorace=[] path=["+os.Getenv("PATH")+"]") || os.Getenv("GORACE") == "" {
		t.Errorf("build environment: %q", out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(rel, "listing")); string(b) != "kept\n" {
		t.Errorf("the build did not see the data volume: %q", b)
	}
	for name, link := range map[string]string{"data": "data", "cache": "var/cache"} {
		target, err := os.Readlink(filepath.Join(rel, link))
		if err != nil || target != filepath.Join(f.dir, "volumes", "shop", name) {
			t.Errorf("volume link %s → %q, %v", link, target, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(rel, "srv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a volume mounted outside the workdir was linked: %v", err)
	}

	// The upload already has something where a volume is mounted.
	_, err = f.rt.Build(f.ctx, runtime.BuildRequest{App: "shop", Release: "v4", ContextDir: upload("data/old.txt"), Spec: sp})
	if !errors.Is(err, runtime.ErrBuild) || !strings.Contains(err.Error(), "already has data") {
		t.Errorf("build over a volume path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "releases", "shop", "v4")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed build left its release directory: %v", err)
	}

	// The same release twice.
	if _, err := f.rt.Build(f.ctx, runtime.BuildRequest{App: "shop", Release: "v3", ContextDir: upload("a"), Spec: sp}); !errors.Is(err, runtime.ErrBuild) {
		t.Errorf("build of an existing release: %v", err)
	}

	// Cancelling the build kills it.
	sp.Build.Command = spec.Command{"sh", "-c", "sleep 1000 & sleep 1000"}
	ctx, cancel := context.WithTimeout(f.ctx, 300*time.Millisecond)
	defer cancel()
	_, err = f.rt.Build(ctx, runtime.BuildRequest{App: "shop", Release: "v5", ContextDir: upload("a"), Spec: sp})
	if !errors.Is(err, runtime.ErrBuild) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled build: %v", err)
	}

	// RemoveArtifact refuses what is not a release directory.
	if err := f.rt.RemoveArtifact(f.ctx, runtime.Artifact{Runtime: Name, Ref: f.dir}); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("remove the data dir as an artifact: %v", err)
	}
}

func TestOrphanedTaskIsKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	art := filepath.Join(dir, "releases", "app", "v1")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, dir, "task")
	taskPID := h.values["task"]
	var rec taskRecord
	waitFor(t, "the task record", func() bool {
		return readJSON(filepath.Join(dir, "runtime", Name, "tasks", "app-migrate-v1-1.json"), &rec) == nil && rec.PID == taskPID
	})
	h.kill()
	if !alive(taskPID, rec.PIDStart) || len(groupMembers(rec.PGID)) < 2 {
		t.Fatalf("the task did not outlive its server")
	}
	rt := openRuntime(t, options(t, dir))
	defer rt.Close()
	if alive(taskPID, rec.PIDStart) || len(groupMembers(rec.PGID)) > 0 {
		t.Errorf("the orphaned task (group %d) survives the new runtime", rec.PGID)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "runtime", Name, "tasks")); len(ents) != 0 {
		t.Errorf("task records left: %v", ents)
	}
}

func TestServerSIGKILLKeepsInstances(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	art := filepath.Join(dir, "releases", "app", "v1")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, dir, "instance")
	pid := h.values["pid"]
	h.kill()

	if !alive(pid, 0) {
		t.Fatal("the instance died with its server")
	}
	f := &fixture{t: t, dir: dir, ctx: context.Background(), rt: openRuntime(t, options(t, dir))}
	t.Cleanup(f.cleanup)
	id := "app-web-v1-1"
	in := f.list(id)
	if in.State != runtime.StateRunning || in.PID != pid || in.Restarts != 0 {
		t.Fatalf("adopted %+v, want running pid %d without restarts", in, pid)
	}
	waitFor(t, "the instance to log its tick", func() bool { return slices.Contains(logTexts(t, f.rt, id), "tick") })

	// The adopting runtime gets the crash and the restart.
	events := f.rt.Events(f.ctx)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crash := nextEvent(t, events, id, runtime.EventCrash)
	if crash.ExitCode != -1 || crash.Message != "killed by SIGKILL" {
		t.Errorf("crash event %+v", crash)
	}
	nextEvent(t, events, id, runtime.EventRestart)
	waitFor(t, "the restarted instance", func() bool {
		in = f.list(id)
		return in.State == runtime.StateRunning && in.PID != 0 && in.PID != pid
	})
	if in.Restarts != 1 || in.Port == 0 {
		t.Errorf("restarted instance %+v", in)
	}
	if err := f.rt.Stop(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, id, runtime.EventExit)
	if alive(in.PID, 0) {
		t.Error("the instance survived its stop")
	}
}

// helper is a runtime running in a child process (a "server") that the
// test SIGKILLs.
type helper struct {
	t      *testing.T
	cmd    *exec.Cmd
	values map[string]int
}

func startHelper(t *testing.T, dir, mode string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir, "MOORAGE_PROCESS_TEST_MODE="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, values: map[string]int{}}
	t.Cleanup(h.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		if k == "ready" {
			return h
		}
		n, _ := strconv.Atoi(v)
		h.values[k] = n
	}
	t.Fatalf("the helper exited before it was ready")
	return nil
}

func (h *helper) kill() {
	if h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Kill()
	_ = h.cmd.Wait()
}

// helperMain is a server started by startHelper: it starts an instance
// or a one-off, says so on stdout, and waits to be killed.
func helperMain(dir string) int {
	rt, err := New(Options{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	art := runtime.Artifact{Runtime: Name, Ref: filepath.Join(dir, "releases", "app", "v1")}
	base := runtime.InstanceSpec{App: "app", Release: "v1", Index: 1, Artifact: art, StopTimeout: 5 * time.Second}
	switch os.Getenv("MOORAGE_PROCESS_TEST_MODE") {
	case "instance":
		s := base
		s.Service, s.Kind = "web", runtime.KindService
		s.Command = []string{"sh", "-c", "echo tick; exec sleep 1000"}
		in, err := rt.Start(context.Background(), s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("pid=%d\n", in.PID)
	case "task":
		s := runtime.RunSpec{InstanceSpec: base}
		s.Service, s.Kind = "migrate", runtime.KindTask
		s.Command = []string{"sh", "-c", "echo started; sleep 1000 & exec sleep 1000"}
		r, w, _ := os.Pipe()
		s.Stdout = w
		go func() { _, _ = rt.Run(context.Background(), s) }()
		line, _ := bufio.NewReader(r).ReadString('\n')
		if line != "started\n" {
			fmt.Fprintln(os.Stderr, "task said", line)
			return 1
		}
		pids := liveTaskPIDs(dir, 30*time.Second)
		if len(pids) == 0 {
			fmt.Fprintln(os.Stderr, "the one-off was never recorded")
			return 1
		}
		for pid := range pids {
			fmt.Printf("task=%d\n", pid)
		}
	}
	fmt.Println("ready")
	select {}
}

// liveTaskPIDs returns the pids of the recorded one-offs of dir, waiting
// until there is one, or returning none after timeout.
func liveTaskPIDs(dir string, timeout time.Duration) map[int]bool {
	out := map[int]bool{}
	deadline := time.Now().Add(timeout)
	for len(out) == 0 && time.Now().Before(deadline) {
		ents, _ := os.ReadDir(filepath.Join(dir, "runtime", Name, "tasks"))
		for _, e := range ents {
			var rec taskRecord
			if readJSON(filepath.Join(dir, "runtime", Name, "tasks", e.Name()), &rec) == nil && rec.PID > 0 {
				out[rec.PID] = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return out
}
