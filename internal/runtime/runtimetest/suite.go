// Package runtimetest is the conformance suite every runtime.Runtime
// passes. It builds its own test program (testdata/app, standard library
// only) with the runtime's Build, then drives real instances of it: HTTP
// readiness, environment and $VAR expansion, volumes, logs, stop signals
// and timeouts, process-group kills, crash restarts, one-offs, exec, and a
// "server restart" that must re-adopt running instances without
// restarting them.
//
// A runtime's test calls Run with a Harness:
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, runtimetest.Harness{
//			Name: "process",
//			New:  func(t *testing.T, dir string) runtime.Runtime { ... },
//		})
//	}
package runtimetest

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

//go:embed testdata/app/main.go testdata/app/Dockerfile
var appFiles embed.FS

// Harness adapts the suite to a runtime.
type Harness struct {
	// Name is the runtime's name ("process", "docker"), used as
	// spec.Runtime.
	Name string
	// New opens a runtime on dataDir. Called again with the same dataDir,
	// it is a server restart. The suite closes the runtimes it opens.
	New func(t *testing.T, dataDir string) runtime.Runtime
	// Port is the port instances listen on ($PORT). 0 lets the runtime
	// pick one (process); docker uses a fixed container port, published.
	Port int
	// AppBinary returns the path of the test program for an instance of
	// artifact a whose working directory is not the artifact's (an
	// accessory). Default: "/app/app" (the Dockerfile's location).
	AppBinary func(a runtime.Artifact) string
	// Skip maps a test name (as in t.Name(), after "Run/") to the reason
	// this runtime cannot run it.
	Skip map[string]string
	// Timeout bounds every wait of the suite (default 30s). A slow
	// runtime (image pulls) may raise it.
	Timeout time.Duration
	// SharedVolume, when set, gives the volume driver and options of a
	// volume the suite shares between instances and one-offs. A cluster
	// runtime (swarm) needs one, since a local volume is per node.
	SharedVolume func(t *testing.T, app, name string) (driver string, opts map[string]string)
	// Lines is set for a runtime that passes a one-off's output on line by
	// line (swarm reads it from the service log stream): a last line
	// without a newline gets one.
	Lines bool
	// Moves is set for a cluster runtime (swarm), where an instance that
	// is restarted may come back on another node, at another address:
	// the suite then finds it through List rather than at its old address.
	Moves bool
	// Extra are the runtime's own tests, by name, run in the group with
	// the suite's (in parallel, on the same engine or cluster, each given
	// a fresh data directory), so that they cost no start-up of their own.
	Extra map[string]func(t *testing.T, dataDir string)
}

// BuildCommand is the build.command of the test program.
var BuildCommand = spec.Command{"env", "CGO_ENABLED=0", "go", "build", "-o", "app", "."}

// WriteApp writes the test program's build context (main.go, go.mod,
// Dockerfile) into dir.
func WriteApp(dir string) error {
	err := fs.WalkDir(appFiles, "testdata/app", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := appFiles.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
	})
	if err != nil {
		return err
	}
	// The go.mod cannot be embedded (it would make testdata/app a module
	// of its own, which go:embed refuses).
	return os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module moorage.test/app\n\ngo 1.22\n"), 0o644)
}

// suite is the state shared by the tests of one Run.
type suite struct {
	h    Harness
	root string
	art  runtime.Artifact // the test program, built once
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	if h.AppBinary == nil {
		h.AppBinary = func(runtime.Artifact) string { return "/app/app" }
	}
	s := &suite{h: h, root: t.TempDir()}
	if !t.Run("Build", s.testBuild) || s.art.Ref == "" {
		t.Fatal("the test program could not be built; skipping the rest")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"BuildFailure", s.testBuildFailure},
		{"StartReady", s.testStartReady},
		{"StartFailure", s.testStartFailure},
		{"Env", s.testEnv},
		{"Volumes", s.testVolumes},
		{"Logs", s.testLogs},
		{"StopSignal", s.testStopSignal},
		{"StopTimeout", s.testStopTimeout},
		{"StopKillsGroup", s.testStopKillsGroup},
		{"CrashRestart", s.testCrashRestart},
		{"Run", s.testRun},
		{"RunTimeout", s.testRunTimeout},
		{"RunTTY", s.testRunTTY},
		{"Exec", s.testExec},
		{"Pause", s.testPause},
		{"List", s.testList},
		{"Remove", s.testRemove},
		{"ServerRestart", s.testServerRestart},
		{"CrashWithoutServer", s.testCrashWithoutServer},
		{"RemoveArtifact", s.testRemoveArtifact},
	}
	for _, name := range slices.Sorted(maps.Keys(h.Extra)) {
		fn := h.Extra[name]
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T)
		}{name, func(t *testing.T) { fn(t, filepath.Join(s.root, "extra-"+name)) }})
	}
	t.Run("group", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if reason, ok := h.Skip[tc.name]; ok {
					t.Skip(reason)
				}
				t.Parallel()
				tc.fn(t)
			})
		}
	})
}

// env is one test's world: a runtime on its own data directory and a
// unique app name.
type env struct {
	t    *testing.T
	s    *suite
	dir  string
	rt   runtime.Runtime
	all  []runtime.Runtime
	app  string
	ctx  context.Context
	seq  int
	mu   sync.Mutex
	apps []string
}

func (s *suite) env(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, s: s, dir: t.TempDir(), app: appName(t), ctx: ctx}
	e.apps = []string{e.app}
	e.rt = s.h.New(t, e.dir)
	e.all = []runtime.Runtime{e.rt}
	t.Cleanup(func() {
		defer cancel()
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if _, err := e.rt.List(cctx, runtime.Filter{App: e.app}); errors.Is(err, runtime.ErrRuntimeClosed) {
			// The test ended between a Close and a New: reopen to clean up.
			e.rt = s.h.New(t, e.dir)
			e.all = append(e.all, e.rt)
		}
		for _, app := range e.apps {
			ins, err := e.rt.List(cctx, runtime.Filter{App: app})
			if err != nil {
				t.Errorf("cleanup: list: %v", err)
				continue
			}
			for _, in := range ins {
				if err := e.rt.Remove(cctx, in.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
					t.Errorf("cleanup: remove %s: %v", in.ID, err)
				}
			}
		}
		for _, rt := range e.all {
			if err := rt.Close(); err != nil {
				t.Errorf("cleanup: close: %v", err)
			}
		}
	})
	return e
}

// restart closes the runtime and opens a new one on the same data
// directory: a server restart.
func (e *env) restart() {
	e.t.Helper()
	if err := e.rt.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.rt = e.s.h.New(e.t, e.dir)
	e.all = append(e.all, e.rt)
}

// otherApp returns a second unique app name, cleaned up like the first.
func (e *env) otherApp() string {
	a := appName(e.t)
	e.apps = append(e.apps, a)
	return a
}

func appName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n := strings.ToLower(t.Name())
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
	}
	n = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, n)
	if len(n) > 12 {
		n = n[:12]
	}
	return "rt" + n + hex.EncodeToString(b)
}

// service returns the spec of a service replica running the test program.
func (e *env) service(name string, index int, cmd ...string) runtime.InstanceSpec {
	return runtime.InstanceSpec{
		App:         e.app,
		Service:     name,
		Release:     "v1",
		Index:       index,
		Kind:        runtime.KindService,
		Artifact:    e.s.art,
		Command:     append([]string{"./app"}, cmd...),
		Port:        e.s.h.Port,
		Publish:     true,
		StopSignal:  syscall.SIGTERM,
		StopTimeout: 10 * time.Second,
	}
}

// task returns the spec of a one-off running the test program.
func (e *env) task(cmd ...string) runtime.RunSpec {
	e.mu.Lock()
	e.seq++
	n := e.seq
	e.mu.Unlock()
	return runtime.RunSpec{InstanceSpec: runtime.InstanceSpec{
		App:         e.app,
		Service:     "task",
		Release:     "v1",
		Index:       n,
		Kind:        runtime.KindTask,
		Artifact:    e.s.art,
		Command:     append([]string{"./app"}, cmd...),
		StopSignal:  syscall.SIGTERM,
		StopTimeout: 10 * time.Second,
	}}
}

func (e *env) timeout() time.Duration { return e.s.h.Timeout }

// mount is a mount of the app's volume name at target, on storage every
// instance shares (Harness.SharedVolume).
func (e *env) mount(name, target string) runtime.Mount {
	m := runtime.Mount{Name: name, Target: target}
	if f := e.s.h.SharedVolume; f != nil {
		m.Driver, m.DriverOpts = f(e.t, e.app, name)
	}
	return m
}

// start starts s and fails the test on error.
func (e *env) start(s runtime.InstanceSpec) runtime.Instance {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout())
	defer cancel()
	in, err := e.rt.Start(ctx, s)
	if err != nil {
		e.t.Fatalf("start %s: %v", s.ID(), err)
	}
	return in
}

// serve starts a "serve" replica and waits until it answers.
func (e *env) serve(s runtime.InstanceSpec) runtime.Instance {
	e.t.Helper()
	in := e.start(s)
	e.waitHTTP(in.Addr, "/health")
	return in
}

// run runs a one-off and returns its exit code and combined output.
func (e *env) run(s runtime.RunSpec) (int, string, error) {
	e.t.Helper()
	var out syncBuffer
	s.Stdout, s.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout())
	defer cancel()
	code, err := e.rt.Run(ctx, s)
	return code, out.String(), err
}

// get fetches http://addr/path; it fails the test on a transport error.
func (e *env) get(addr, path string) (int, string) {
	e.t.Helper()
	c, body, err := tryGet(addr, path)
	if err != nil {
		e.t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	return c, body
}

func tryGet(addr, path string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHTTP waits until GET addr/path answers 200 and returns the body.
func (e *env) waitHTTP(addr, path string) string {
	e.t.Helper()
	var last error
	deadline := time.Now().Add(e.timeout())
	for time.Now().Before(deadline) {
		code, body, err := tryGet(addr, path)
		if err == nil && code == http.StatusOK {
			return body
		}
		last = err
		if err == nil {
			last = fmt.Errorf("status %d: %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("GET %s%s never answered 200: %v", addr, path, last)
	return ""
}

// getJSON fetches and decodes a JSON answer.
func (e *env) getJSON(addr, path string, v any) {
	e.t.Helper()
	code, body := e.get(addr, path)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s%s: status %d: %s", addr, path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s%s: %v: %s", addr, path, err, body)
	}
}

// bootID returns the random id the serving program picked at start: it
// changes exactly when the program restarts.
func (e *env) bootID(addr string) string {
	e.t.Helper()
	var id struct {
		Boot string `json:"boot"`
	}
	e.getJSON(addr, "/id", &id)
	return id.Boot
}

// waitFor polls cond until it holds or the suite's timeout passes.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(e.timeout())
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// instance returns the listed instance id.
func (e *env) instance(id string) runtime.Instance {
	e.t.Helper()
	ins, err := e.rt.List(e.ctx, runtime.Filter{App: e.app})
	if err != nil {
		e.t.Fatalf("list: %v", err)
	}
	for _, in := range ins {
		if in.ID == id {
			return in
		}
	}
	e.t.Fatalf("instance %s not listed (have %v)", id, ids(ins))
	return runtime.Instance{}
}

func ids(ins []runtime.Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.ID
	}
	return out
}

// logs returns all the log lines of instance id.
func (e *env) logs(id string, opts runtime.LogOptions) []runtime.LogLine {
	e.t.Helper()
	var out []runtime.LogLine
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout())
	defer cancel()
	err := e.rt.Logs(ctx, id, opts, func(l runtime.LogLine) error {
		out = append(out, l)
		return nil
	})
	if err != nil {
		e.t.Fatalf("logs of %s: %v", id, err)
	}
	return out
}

func texts(ls []runtime.LogLine) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

func hasText(ls []runtime.LogLine, text string) bool {
	for _, l := range ls {
		if l.Text == text {
			return true
		}
	}
	return false
}

// waitLog waits until instance id has logged text.
func (e *env) waitLog(id, text string) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s to log %q", id, text), func() bool {
		return hasText(e.logs(id, runtime.LogOptions{}), text)
	})
}

// events subscribes to the runtime's events.
func (e *env) events() <-chan runtime.InstanceEvent {
	return e.rt.Events(e.ctx)
}

// nextEvent waits for the next event of instance id of type typ, skipping
// others.
func (e *env) nextEvent(ch <-chan runtime.InstanceEvent, id string, typ runtime.EventType) runtime.InstanceEvent {
	e.t.Helper()
	timer := time.NewTimer(e.timeout())
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				e.t.Fatalf("event stream closed waiting for %s of %s", typ, id)
			}
			if ev.Instance == id && ev.Type == typ {
				return ev
			}
		case <-timer.C:
			e.t.Fatalf("no %s event for %s", typ, id)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
