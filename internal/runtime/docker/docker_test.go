package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/testutil/dockersock"
)

// requireDocker skips the test when no Docker Engine answers, or fails it
// when MOORAGE_REQUIRE_DOCKER=1 (CI).
func requireDocker(t *testing.T) {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		sock = strings.TrimPrefix(h, "unix://")
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but no Docker Engine answers at %s: %v", sock, err)
	}
	t.Skipf("no Docker Engine at %s (%v); set MOORAGE_REQUIRE_DOCKER=1 to fail instead", sock, err)
}

// prefixFor gives each data dir its own prefix, so that the runtimes of
// parallel tests never see each other's containers.
func prefixFor(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return "mrt" + hex.EncodeToString(h[:5])
}

func testLogger() *slog.Logger {
	if os.Getenv("MOORAGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// cleaner removes, once the top-level test ends, everything made with the
// prefixes it saw.
type cleaner struct {
	mu       sync.Mutex
	prefixes map[string]bool
}

func newCleaner(t *testing.T) *cleaner {
	c := &cleaner{prefixes: map[string]bool{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for p := range c.prefixes {
			removeAll(p)
		}
	})
	return c
}

func (c *cleaner) add(prefix string) {
	c.mu.Lock()
	c.prefixes[prefix] = true
	c.mu.Unlock()
}

// docker runs the docker CLI.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// removeAll removes every container, volume, network and image of prefix.
func removeAll(prefix string) {
	filter := "label=" + containers.LabelPrefix + "=" + prefix
	if ids, _ := docker("ps", "-aq", "--filter", filter); ids != "" {
		docker(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("volume", "ls", "-q", "--filter", filter); ids != "" {
		docker(append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("network", "ls", "-q", "--filter", filter); ids != "" {
		docker(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("images", "-q", "--filter", filter); ids != "" {
		docker(append([]string{"rmi", "-f"}, strings.Fields(ids)...)...)
	}
}

// options are the test defaults: quick backoffs.
func options(dir string) Options {
	return Options{
		DataDir:    dir,
		Prefix:     prefixFor(dir),
		Logger:     testLogger(),
		BackoffMin: 200 * time.Millisecond,
		BackoffMax: 2 * time.Second,
	}
}

func openRuntime(t *testing.T, o Options) *Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := New(ctx, o)
	if err != nil {
		t.Fatalf("docker runtime: %v", err)
	}
	return r
}

func TestConformance(t *testing.T) {
	t.Parallel()
	requireDocker(t)
	cl := newCleaner(t)
	runtimetest.Run(t, runtimetest.Harness{
		Name: Name,
		New: func(t *testing.T, dir string) runtime.Runtime {
			o := options(dir)
			cl.add(o.Prefix)
			return openRuntime(t, o)
		},
		Port: 8080,
		// Not the default 30s: with every package's tests at once on 2
		// cores, one container start took longer in CI.
		Timeout: 2 * time.Minute,
		Skip: map[string]string{
			"CrashWithoutServer": "docker: crash restarts are moorage's (restart policy no), so a container that crashes while no server runs stays exited until a server is back (TestReadoptionWithoutRestart checks that)",
		},
	})
}

// env is one docker-specific test's world: a runtime with its own data
// dir and prefix, and an app name.
type env struct {
	t      *testing.T
	dir    string
	opts   Options
	rt     *Runtime
	ctx    context.Context
	app    string
	events <-chan runtime.InstanceEvent
}

func newEnv(t *testing.T, edit ...func(*Options)) *env {
	t.Helper()
	fixture(t)
	dir := t.TempDir()
	o := options(dir)
	for _, fn := range edit {
		fn(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, dir: dir, opts: o, rt: openRuntime(t, o), ctx: ctx, app: "app" + prefixFor(t.Name())[3:9]}
	t.Cleanup(func() {
		cancel()
		e.rt.Close()
		removeAll(o.Prefix)
	})
	return e
}

// reopen closes the runtime and opens a new one on the same state: a
// server restart.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.rt.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.rt = openRuntime(e.t, e.opts)
}

func (e *env) service(name string, index int, cmd ...string) runtime.InstanceSpec {
	return runtime.InstanceSpec{
		App: e.app, Service: name, Release: "v1", Index: index, Kind: runtime.KindService,
		Artifact: fix.art, Command: append([]string{"./app"}, cmd...),
		Port: 8080, Publish: true, StopSignal: syscall.SIGTERM, StopTimeout: 5 * time.Second,
	}
}

func (e *env) task(n int, cmd ...string) runtime.RunSpec {
	return runtime.RunSpec{InstanceSpec: runtime.InstanceSpec{
		App: e.app, Service: "task", Release: "v1", Index: n, Kind: runtime.KindTask,
		Artifact: fix.art, Command: append([]string{"./app"}, cmd...),
	}}
}

func (e *env) start(s runtime.InstanceSpec) runtime.Instance {
	e.t.Helper()
	in, err := e.rt.Start(e.ctx, s)
	if err != nil {
		e.t.Fatalf("start %s: %v", s.ID(), err)
	}
	return in
}

// run runs a one-off and returns its exit code and output.
func (e *env) run(s runtime.RunSpec) (int, string) {
	e.t.Helper()
	var out syncBuffer
	s.Stdout, s.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	code, err := e.rt.Run(ctx, s)
	if err != nil {
		e.t.Fatalf("run %s: %v\n%s", s.ID(), err, out.String())
	}
	return code, out.String()
}

func (e *env) instance(id string) runtime.Instance {
	e.t.Helper()
	ins, err := e.rt.List(e.ctx, runtime.Filter{App: e.app})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, in := range ins {
		if in.ID == id {
			return in
		}
	}
	e.t.Fatalf("%s is not listed", id)
	return runtime.Instance{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(addr, path string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHTTP waits until addr answers 200 on path and returns the body.
func waitHTTP(t *testing.T, addr, path string) string {
	t.Helper()
	var body string
	waitFor(t, "GET "+addr+path, func() bool {
		code, b, err := get(addr, path)
		body = b
		return err == nil && code == 200
	})
	return body
}

func bootID(t *testing.T, addr string) string {
	t.Helper()
	var id struct {
		Boot string `json:"boot"`
	}
	if err := json.Unmarshal([]byte(waitHTTP(t, addr, "/id")), &id); err != nil {
		t.Fatal(err)
	}
	return id.Boot
}

// logCount counts the lines of id whose text is text.
func (e *env) logCount(id, text string) int {
	n := 0
	_ = e.rt.Logs(e.ctx, id, runtime.LogOptions{}, func(l runtime.LogLine) error {
		if l.Text == text {
			n++
		}
		return nil
	})
	return n
}

func nextEvent(t *testing.T, ch <-chan runtime.InstanceEvent, id string, typ runtime.EventType) runtime.InstanceEvent {
	t.Helper()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream closed waiting for %s of %s", typ, id)
			}
			if ev.Instance == id && ev.Type == typ {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s event for %s", typ, id)
		}
	}
}

// containerState returns docker's view of a container: its state and id.
func containerState(t *testing.T, name string) (state, id string) {
	t.Helper()
	out, err := docker("inspect", "-f", "{{.State.Status}} {{.Id}}", name)
	if err != nil {
		return "", ""
	}
	state, id, _ = strings.Cut(out, " ")
	return state, id
}

// A container without the runtime's prefix label is never listed,
// stopped, removed or replaced, even when it has a moorage name and
// moorage's other labels.
func TestForeignContainersAreNeverTouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mine := e.service("web", 1, "serve")
	e.start(mine)
	theirs := e.service("web", 2, "serve")
	name := e.rt.names.Instance(theirs.ID())
	other := "mrtother-" + theirs.ID()
	for _, c := range []struct{ name, prefix string }{{name, ""}, {other, "mrtother"}} {
		args := []string{"create", "--name", c.name, "--label", containers.LabelApp + "=" + e.app, "--label", containers.LabelInstance + "=" + theirs.ID(),
			"--label", containers.LabelKind + "=service", "--label", containers.LabelService + "=web"}
		if c.prefix != "" {
			args = append(args, "--label", containers.LabelPrefix+"="+c.prefix)
		}
		args = append(args, fix.art.Ref, "./app", "serve")
		if out, err := docker(args...); err != nil {
			t.Fatalf("docker create: %v: %s", err, out)
		}
		t.Cleanup(func() { docker("rm", "-f", c.name) })
	}
	check := func() {
		t.Helper()
		ins, err := e.rt.List(e.ctx, runtime.Filter{App: e.app})
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) != 1 || ins[0].ID != mine.ID() {
			t.Fatalf("listed %v, want only %s", ins, mine.ID())
		}
		for _, n := range []string{name, other} {
			if st, _ := containerState(t, n); st != "created" {
				t.Fatalf("foreign container %s is %q, want untouched (created)", n, st)
			}
		}
	}
	check()
	if err := e.rt.Remove(e.ctx, theirs.ID()); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("remove of a foreign container: %v, want ErrNotFound", err)
	}
	if err := e.rt.Stop(e.ctx, theirs.ID()); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stop of a foreign container: %v, want ErrNotFound", err)
	}
	if _, err := e.rt.Start(e.ctx, theirs); !errors.Is(err, runtime.ErrExists) || !strings.Contains(err.Error(), "does not own") || !strings.Contains(err.Error(), "docker rename") {
		t.Errorf("start over a foreign container: %v, want ErrExists saying moorage does not own it", err)
	}
	if _, err := e.rt.Exec(e.ctx, theirs.ID(), runtime.ExecSpec{Cmd: []string{"true"}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("exec in a foreign container: %v, want ErrNotFound", err)
	}
	e.reopen()
	check()
}

// A restarted server re-adopts running containers without restarting
// them, copies on their logs without losing or repeating a line, and
// reports a container that exited while no server ran as exited.
func TestReadoptionWithoutRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	web := e.service("web", 1, "serve", "-lines", "2")
	acc := runtime.InstanceSpec{App: e.app, Service: "cache", Kind: runtime.KindAccessory, Image: fix.art.Ref,
		Command: []string{"/app/app", "serve"}, Port: 8080, Hash: "h1"}
	wi := e.start(web)
	e.start(acc)
	boot := bootID(t, wi.Addr)
	waitFor(t, "hello 2 in the log", func() bool { return e.logCount(web.ID(), "hello 2") == 1 })
	before := e.instance(web.ID())
	accBefore := e.instance(acc.ID())
	if accBefore.Host != "cache" || accBefore.Port != 8080 || accBefore.Hash != "h1" || accBefore.Addr == "" {
		t.Fatalf("accessory listed as %+v, want host cache, port 8080, its hash and an address", accBefore)
	}
	waitHTTP(t, accBefore.Addr, "/health")

	e.rt.Close()
	if code, _, err := get(wi.Addr, "/log?msg=while-away"); err != nil || code != 200 {
		t.Fatalf("the container stopped with the runtime: %d %v", code, err)
	}
	e.rt = openRuntime(t, e.opts)
	for _, b := range []runtime.Instance{before, accBefore} {
		got := e.instance(b.ID)
		if got.State != runtime.StateRunning || got.PID != b.PID || !got.StartedAt.Equal(b.StartedAt) || got.Restarts != 0 || got.Addr != b.Addr {
			t.Errorf("after re-adoption %+v, want %+v unchanged", got, b)
		}
	}
	if got := bootID(t, wi.Addr); got != boot {
		t.Errorf("the program restarted (boot %s → %s)", boot, got)
	}
	waitFor(t, "the line printed while away", func() bool { return e.logCount(web.ID(), "while-away") == 1 })
	get(wi.Addr, "/log?msg=after")
	waitFor(t, "the line printed after", func() bool { return e.logCount(web.ID(), "after") == 1 })
	for _, text := range []string{"hello 1", "hello 2", "while-away"} {
		if n := e.logCount(web.ID(), text); n != 1 {
			t.Errorf("%q is in the log %d times, want once", text, n)
		}
	}

	// The new runtime supervises: a kill is a crash, and a restart.
	events := e.rt.Events(e.ctx)
	if out, err := docker("kill", e.rt.names.Instance(acc.ID())); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	nextEvent(t, events, acc.ID(), runtime.EventCrash)
	nextEvent(t, events, acc.ID(), runtime.EventRestart)
	// And stops what it adopted.
	e.rt.Close()
	e.rt = openRuntime(t, e.opts)
	events = e.rt.Events(e.ctx)
	if err := e.rt.Stop(e.ctx, acc.ID()); err != nil {
		t.Fatalf("stop an adopted container: %v", err)
	}
	nextEvent(t, events, acc.ID(), runtime.EventExit)
	if got := e.instance(acc.ID()); got.State != runtime.StateExited || got.Restarts != 1 {
		t.Errorf("adopted accessory after stop: %+v, want exited with its 1 restart", got)
	}

	// A container that exits while no server runs stays exited.
	e.rt.Close()
	get(wi.Addr, "/exit?code=4")
	waitFor(t, "the container to exit", func() bool {
		st, _ := containerState(t, e.rt.names.Instance(web.ID()))
		return st == "exited"
	})
	e.rt = openRuntime(t, e.opts)
	if got := e.instance(web.ID()); got.State != runtime.StateExited || got.ExitCode != 4 || got.Addr != "" {
		t.Errorf("after exiting without a server: %+v, want exited with code 4", got)
	}
}

// docker kill of a container: moorage restarts it, with a backoff that
// doubles while it keeps crashing, and reports each crash and restart.
func TestCrashRestartBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	events := e.rt.Events(e.ctx)
	web := e.service("web", 1, "serve")
	in := e.start(web)
	waitHTTP(t, in.Addr, "/health")
	name := e.rt.names.Instance(web.ID())
	var backoffs []time.Duration
	for i := 1; i <= 2; i++ {
		if out, err := docker("kill", name); err != nil {
			t.Fatalf("docker kill: %v %s", err, out)
		}
		crash := nextEvent(t, events, web.ID(), runtime.EventCrash)
		if crash.ExitCode != 137 || !strings.Contains(crash.Message, "signal 9") {
			t.Errorf("crash %+v, want exit 137 by signal 9", crash)
		}
		backoffs = append(backoffs, crash.Backoff)
		if ev := nextEvent(t, events, web.ID(), runtime.EventRestart); ev.Restarts != i {
			t.Errorf("restart event %+v, want Restarts %d", ev, i)
		}
		var got runtime.Instance
		waitFor(t, "the container to run again", func() bool {
			got = e.instance(web.ID())
			return got.State == runtime.StateRunning && got.Addr != ""
		})
		waitHTTP(t, got.Addr, "/health")
		if got.Restarts != i {
			t.Errorf("listed %+v, want Restarts %d", got, i)
		}
	}
	if backoffs[0] != e.opts.BackoffMin || backoffs[1] != 2*e.opts.BackoffMin {
		t.Errorf("backoffs %v, want %v then %v", backoffs, e.opts.BackoffMin, 2*e.opts.BackoffMin)
	}
	if err := e.rt.Stop(e.ctx, web.ID()); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, web.ID(), runtime.EventExit)
	if st, _ := containerState(t, name); st != "exited" {
		t.Errorf("after stop the container is %s", st)
	}
}

// A fresh volume becomes writable by the non-root user the instance runs
// as; a volume that already has content keeps its owner.
func TestFreshVolumeIsHandedToItsUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, v := range []string{"fresh", "kept"} {
		if err := e.rt.EnsureVolume(e.ctx, e.app, v); err != nil {
			t.Fatal(err)
		}
	}
	keptDir, err := e.rt.VolumePath(e.ctx, e.app, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keptDir, "old"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	web := e.service("web", 1, "serve")
	web.Mounts = []runtime.Mount{{Name: "fresh", Target: "/app/fresh"}, {Name: "kept", Target: "/app/kept"}}
	in := e.start(web)
	waitHTTP(t, in.Addr, "/health")
	if code, body, err := get(in.Addr, "/write?vol=fresh&file=f&data=hi"); err != nil || code != 200 {
		t.Fatalf("write into the fresh volume: %d %s %v", code, body, err)
	}
	owner := func(name string) uint32 {
		p, err := e.rt.VolumePath(e.ctx, e.app, name)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Uid
	}
	if u := owner("fresh"); u != 65534 {
		t.Errorf("fresh volume owned by %d, want 65534", u)
	}
	if u := owner("kept"); u != 0 {
		t.Errorf("a volume with content changed owner to %d", u)
	}
	if out, err := docker("volume", "inspect", "-f", "{{index .Labels \""+containers.LabelPrefix+"\"}}", e.rt.names.Volume(e.app, "fresh")); err != nil || out != e.opts.Prefix {
		t.Errorf("volume label %q %v, want %s", out, err, e.opts.Prefix)
	}
}

// The Docker socket, or a directory holding it, is never mounted; another
// host path is, read by a one-off.
func TestDockerSocketIsNeverMounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/", "/var/run/"} {
		web := e.service("web", 1, "serve")
		web.Mounts = []runtime.Mount{{Name: p, Target: "/sock"}}
		_, err := e.rt.Start(e.ctx, web)
		if !errors.Is(err, ErrDockerSocket) || !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Errorf("mount of %s: %v, want ErrDockerSocket", p, err)
		}
		task := e.task(1, "exit", "0")
		task.Mounts = web.Mounts
		if _, err := e.rt.Run(e.ctx, task); !errors.Is(err, ErrDockerSocket) {
			t.Errorf("one-off mounting %s: %v, want ErrDockerSocket", p, err)
		}
	}
	ins, _ := e.rt.List(e.ctx, runtime.Filter{App: e.app})
	if len(ins) != 0 {
		t.Fatalf("refused starts left %v", ins)
	}
	host := t.TempDir()
	os.Chmod(host, 0o755)
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := e.task(2, "cat", "/data/f")
	task.Mounts = []runtime.Mount{{Name: host, Target: "/data"}}
	if code, out := e.run(task); code != 0 || out != "from the host" {
		t.Errorf("one-off with a bind mount: %d %q", code, out)
	}
}

// Accessories answer by name on the app's network.
func TestAccessoryAnswersByName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if !fix.shell {
		t.Skip("no static busybox on this host (apt-get install busybox-static)")
	}
	acc := runtime.InstanceSpec{App: e.app, Service: "db", Kind: runtime.KindAccessory, Image: fix.art.Ref,
		Command: []string{"/app/app", "serve"}, Port: 8080, Env: map[string]string{"WHO": "the accessory"}}
	in := e.start(acc)
	waitHTTP(t, in.Addr, "/health")
	task := e.task(1)
	task.Command = []string{"sh", "-c", "busybox wget -qO- http://db:8080/env"}
	code, out := e.run(task)
	if code != 0 || !strings.Contains(out, "the accessory") {
		t.Fatalf("GET http://db:8080/env from a one-off: exit %d %q", code, out)
	}
	if out, _ := docker("network", "inspect", "-f", "{{index .Labels \""+containers.LabelPrefix+"\"}}", e.rt.names.Network(e.app)); out != e.opts.Prefix {
		t.Errorf("network label %q, want %s", out, e.opts.Prefix)
	}
}

// Both builders honour the Dockerfile, target, build args and
// .dockerignore, label and tag the image, and say which they are.
func TestBuilders(t *testing.T) {
	t.Parallel()
	fixture(t)
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"api", func(o *Options) { o.Builder = BuilderAPI }, "Docker Engine API's builder"},
	}
	probe := &Runtime{ctx: context.Background()}
	if b := probe.findBuilder(); b.cli != "" {
		cases = append(cases, struct {
			name string
			edit func(*Options)
			want string
		}{"buildkit", func(o *Options) {}, "with BuildKit (" + b.desc + ")"})
	}
	if len(cases) == 1 {
		// Debian 12 has no docker-buildx package, but the CLI of its
		// docker.io (20.10) has BuildKit built in: CI always has one.
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but no docker CLI with BuildKit is installed (%s): install Debian's docker.io (its CLI has BuildKit built in) or docker-buildx", probe.findBuilder().desc)
		}
		t.Log("no docker CLI with BuildKit on this host: only the API builder is tested")
	}
	df := `FROM scratch AS base
ARG GREETING
WORKDIR /app
COPY app /app/app
COPY ctx/ /app/ctx/
USER 65534
FROM base AS final
ARG GREETING
ENV GREETING_ENV=$GREETING
FROM base AS other
ENV GREETING_ENV=wrong-target
`
	files := map[string]string{"ctx/public.txt": "public", "ctx/secret.txt": "secret", ".dockerignore": "ctx/secret.txt\n"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, c.edit)
			sp := &spec.Spec{App: e.app, Runtime: Name, Build: &spec.Build{Dockerfile: "Dockerfile", Target: "final",
				Args: map[string]string{"GREETING": "bonjour"}}, Services: map[string]*spec.Service{"web": {Name: "web"}}}
			art, out, err := buildImage(e.ctx, e.rt, e.app, df, files, sp)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("build output does not say %q:\n%s", c.want, out)
			}
			if !strings.HasPrefix(art.Ref, "sha256:") || art.User != "65534" || art.Runtime != Name {
				t.Errorf("artifact %+v, want an image id and user 65534", art)
			}
			tag := e.opts.Prefix + "-" + e.app + ":v1"
			if out, err := docker("image", "inspect", "-f", "{{.Id}} {{index .Config.Labels \""+containers.LabelPrefix+"\"}} {{index .Config.Labels \""+containers.LabelRelease+"\"}}", tag); err != nil || out != art.Ref+" "+e.opts.Prefix+" v1" {
				t.Errorf("image %s: %q %v, want %s labelled", tag, out, err, art.Ref)
			}
			task := e.task(1, "getenv", "GREETING_ENV")
			task.Artifact = art
			if code, out := e.run(task); code != 0 || out != "bonjour\n" {
				t.Errorf("GREETING_ENV = %q (exit %d), want bonjour: target or build args lost", out, code)
			}
			task = e.task(2, "cat", "/app/ctx/public.txt")
			task.Artifact = art
			if code, out := e.run(task); code != 0 || out != "public" {
				t.Errorf("public.txt: %d %q", code, out)
			}
			task = e.task(3, "cat", "/app/ctx/secret.txt")
			task.Artifact = art
			if code, _ := e.run(task); code == 0 {
				t.Errorf("secret.txt is in the image despite .dockerignore")
			}
			if err := e.rt.RemoveArtifact(e.ctx, art); err != nil {
				t.Fatal(err)
			}
			if ok, err := e.rt.ArtifactExists(e.ctx, art); ok || err != nil {
				t.Errorf("after RemoveArtifact: exists %v %v", ok, err)
			}
		})
	}
}

// A service whose image runs as root is refused unless the spec sets a
// user or allows root; a prebuilt image that cannot be pulled fails
// clearly.
func TestRootAndPullRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	df := "FROM scratch\nWORKDIR /app\nCOPY app /app/app\n"
	sp := func(svc spec.Service) *spec.Spec {
		svc.Name = "web"
		return &spec.Spec{App: e.app, Runtime: Name, Build: &spec.Build{Dockerfile: "Dockerfile"},
			Services: map[string]*spec.Service{"web": &svc}}
	}
	_, out, err := buildImage(e.ctx, e.rt, e.app, df, nil, sp(spec.Service{}))
	if !errors.Is(err, ErrRunsAsRoot) || !errors.Is(err, runtime.ErrInvalidSpec) || !errors.Is(err, runtime.ErrBuild) ||
		!strings.Contains(err.Error(), "allow_root: true") || !strings.Contains(err.Error(), "services.web.user") {
		t.Fatalf("build of a root image: %v\n%s", err, out)
	}
	if out, _ := docker("images", "-q", e.opts.Prefix+"-"+e.app+":v1"); out != "" {
		t.Errorf("the refused image was kept: %s", out)
	}
	for _, svc := range []spec.Service{{User: "65534"}, {AllowRoot: true}} {
		if art, out, err := buildImage(e.ctx, e.rt, e.app, df, nil, sp(svc)); err != nil || art.User != "" {
			t.Errorf("build with %+v: %+v %v\n%s", svc, art, err, out)
		}
	}

	img := "registry.invalid/moorage/none:1"
	_, err = e.rt.Build(e.ctx, runtime.BuildRequest{App: e.app, Release: "v2", ContextDir: t.TempDir(),
		Spec: &spec.Spec{App: e.app, Runtime: Name, Image: img}})
	if !errors.Is(err, runtime.ErrBuild) || !strings.Contains(err.Error(), "cannot be pulled") || !strings.Contains(err.Error(), img) ||
		!strings.Contains(err.Error(), "remove image: and add build:") {
		t.Errorf("deploy of an image that cannot be pulled: %v", err)
	}
	acc := runtime.InstanceSpec{App: e.app, Service: "db", Kind: runtime.KindAccessory, Image: img, Port: 5432}
	if _, err := e.rt.Start(e.ctx, acc); err == nil || !strings.Contains(err.Error(), "cannot be pulled") ||
		!strings.Contains(err.Error(), "docker build -t "+img+" DIR") || strings.Contains(err.Error(), "with `build:`") {
		t.Errorf("accessory with an image that cannot be pulled: %v", err)
	}
}

// Volumes go only through RemoveVolume, never while used, and a volume
// moorage does not own is never used nor removed.
func TestRemoveVolume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.rt.EnsureVolume(e.ctx, e.app, "data"); err != nil {
		t.Fatal(err)
	}
	web := e.service("web", 1, "serve")
	web.Mounts = []runtime.Mount{{Name: "data", Target: "/app/data"}}
	e.start(web)
	if err := e.rt.RemoveVolume(e.ctx, e.app, "data"); err == nil {
		t.Fatal("removed a volume in use")
	}
	if err := e.rt.Remove(e.ctx, web.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.VolumePath(e.ctx, e.app, "data"); err != nil {
		t.Fatalf("removing the instance removed its volume: %v", err)
	}
	if err := e.rt.RemoveVolume(e.ctx, e.app, "data"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.RemoveVolume(e.ctx, e.app, "data"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("remove again: %v, want ErrNotFound", err)
	}
	foreign := e.rt.names.Volume(e.app, "theirs")
	if out, err := docker("volume", "create", foreign); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	t.Cleanup(func() { docker("volume", "rm", "-f", foreign) })
	if err := e.rt.EnsureVolume(e.ctx, e.app, "theirs"); !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "docker volume rm "+foreign) {
		t.Errorf("EnsureVolume over a foreign volume: %v, want ErrNotOwned and how to fix it", err)
	}
	if err := e.rt.RemoveVolume(e.ctx, e.app, "theirs"); !errors.Is(err, ErrNotOwned) {
		t.Errorf("RemoveVolume of a foreign volume: %v, want ErrNotOwned", err)
	}
}

// New fails with ErrUnavailable when no engine answers.
func TestUnavailable(t *testing.T) {
	_, err := New(context.Background(), Options{DataDir: t.TempDir(), Host: "unix://" + filepath.Join(t.TempDir(), "nothing.sock")})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "start Docker") || !strings.Contains(err.Error(), "--docker-host") {
		t.Fatalf("New without an engine: %v, want ErrUnavailable and how to fix it", err)
	}
}

// The spec's user, read-only root, memory and CPU limits, stop signal and
// timeout reach the container, the restart policy is "no" (restarts are
// moorage's) and the port is published on loopback only.
func TestContainerSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	web := e.service("web", 1, "serve")
	web.User, web.ReadOnly, web.Memory, web.CPUs = "1000:1000", true, 64<<20, 0.5
	web.StopSignal, web.StopTimeout, web.Hash = syscall.SIGUSR1, 3*time.Second, "abc"
	in := e.start(web)
	waitHTTP(t, in.Addr, "/health")
	if !strings.HasPrefix(in.Addr, "127.0.0.1:") || in.Port != 8080 {
		t.Errorf("instance %+v, want a 127.0.0.1 address and port 8080", in)
	}
	out, err := docker("inspect", "-f", `{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.Config.StopSignal}} {{.Config.StopTimeout}} {{.HostConfig.RestartPolicy.Name}} {{.Config.Hostname}} {{index .Config.Labels "moorage.hash"}} {{(index (index .HostConfig.PortBindings "8080/tcp") 0).HostIp}}`, e.rt.names.Instance(web.ID()))
	want := "1000:1000 true 67108864 500000000 SIGUSR1 3 no " + web.ID() + " abc 127.0.0.1"
	if err != nil || out != want {
		t.Errorf("container settings %q (%v), want %q", out, err, want)
	}
	if err := e.rt.Stop(e.ctx, web.ID()); err != nil {
		t.Fatal(err)
	}
	if got := e.instance(web.ID()); got.ExitCode != 0 || e.logCount(web.ID(), "received SIGUSR1, exiting") != 1 {
		t.Errorf("stopped with %+v, want SIGUSR1 and exit 0", got)
	}
}

// An image's HEALTHCHECK is reported: the artifact says it has one, and the
// instance's health follows it.
func TestImageHealthcheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	df := "FROM scratch\nWORKDIR /app\nCOPY app /app/app\nUSER 65534\nHEALTHCHECK --interval=1s --timeout=2s CMD [\"/app/app\", \"exit\", \"0\"]\n"
	art, out, err := buildImage(e.ctx, e.rt, e.app, df, nil, nil)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !art.Healthcheck {
		t.Fatalf("artifact does not report the image's HEALTHCHECK: %+v", art)
	}
	// (1s interval + 2s timeout) × (3 retries + 1) + 10s of slack.
	if art.HealthcheckWait != 22*time.Second {
		t.Errorf("HEALTHCHECK wait %s, want 22s from the image's settings", art.HealthcheckWait)
	}
	if fix.art.Healthcheck {
		t.Fatalf("an image without HEALTHCHECK reports one")
	}
	s := e.service("web", 1, "serve")
	s.Artifact = art
	e.start(s)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if in := e.instance(s.ID()); in.Health == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never became healthy: %+v", e.instance(s.ID()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The app network is looked up at every start, not remembered: after a
// `docker network rm` (or prune) the next start makes it again.
func TestNetworkRemovedBehindMoorage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	web := e.service("web", 1, "serve")
	e.start(web)
	if err := e.rt.Remove(e.ctx, web.ID()); err != nil {
		t.Fatal(err)
	}
	if out, err := docker("network", "rm", e.rt.names.Network(e.app)); err != nil {
		t.Fatalf("docker network rm: %v %s", err, out)
	}
	in := e.start(web)
	waitHTTP(t, in.Addr, "/health")
}

// Pruning an image moorage built removes only moorage's tag: a tag a user
// added keeps the image (which is then theirs: the release's artifact
// counts as gone). Without other tags the image goes.
func TestRemoveArtifactKeepsOtherTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	art, out, err := buildImage(e.ctx, e.rt, e.app, "FROM scratch\nCOPY app /app/app\nUSER 65534\n", nil, nil)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ours := e.opts.Prefix + "-" + e.app + ":v1"
	theirs := e.opts.Prefix + "-users-copy:keep"
	if out, err := docker("tag", ours, theirs); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	if err := e.rt.RemoveArtifact(e.ctx, art); err != nil {
		t.Fatal(err)
	}
	if out, err := docker("image", "inspect", "-f", "{{.Id}}", theirs); err != nil || out != art.Ref {
		t.Fatalf("the user's tag %s: %q %v, want it kept on %s", theirs, out, err, art.Ref)
	}
	if _, err := docker("image", "inspect", ours); err == nil {
		t.Errorf("moorage's tag %s is still there", ours)
	}
	if ok, err := e.rt.ArtifactExists(e.ctx, art); ok || err != nil {
		t.Errorf("after the prune the artifact exists: %v %v", ok, err)
	}
	// Removing it again changes nothing and fails nothing.
	if err := e.rt.RemoveArtifact(e.ctx, art); err != nil {
		t.Fatal(err)
	}
	if _, err := docker("image", "inspect", theirs); err != nil {
		t.Errorf("the user's tag went with a second prune: %v", err)
	}
	docker("rmi", theirs)

	// A build.dockerfile outside the upload is refused.
	_, _, err = buildImage(e.ctx, e.rt, e.app, "FROM scratch\n", nil, &spec.Spec{App: e.app, Runtime: Name, Build: &spec.Build{Dockerfile: "../Dockerfile"}})
	if !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "not inside the upload") {
		t.Errorf("dockerfile ../Dockerfile: %v", err)
	}
}

// How long a HEALTHCHECK may take follows its settings, with Docker's
// defaults for what it leaves out: a plain `HEALTHCHECK CMD ...` probes
// first after 30s, so a fixed 30s wait would fail a healthy app.
func TestHealthcheckWait(t *testing.T) {
	for _, c := range []struct {
		h    dockerspec.HealthcheckConfig
		want time.Duration
	}{
		{dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}}, 4*time.Minute + 10*time.Second},
		{dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, Timeout: time.Second, Retries: 2, StartPeriod: time.Minute}, time.Minute + 18*time.Second + 10*time.Second},
	} {
		if got := healthcheckWait(&c.h); got != c.want {
			t.Errorf("healthcheckWait(%+v) = %s, want %s", c.h, got, c.want)
		}
	}
	if a := withHealthcheck(runtime.Artifact{}, &dockerspec.DockerOCIImageConfig{DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{Healthcheck: &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}}}); a.Healthcheck || a.HealthcheckWait != 0 {
		t.Errorf("HEALTHCHECK NONE counts as a check: %+v", a)
	}
}

// An accessory's "./dir" host path is a read-only copy of the upload kept
// per release: the next release's build never touches the copy a running
// accessory mounts, a restart with the new release mounts the new copy,
// and pruning a release removes its copy only once no container mounts
// it.
func TestLocalFilesPerRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sp := &spec.Spec{App: e.app, Runtime: Name, Build: &spec.Build{Dockerfile: "Dockerfile", Workdir: "/app"},
		Services:    map[string]*spec.Service{"web": {Name: "web"}},
		Accessories: map[string]*spec.Accessory{"cfg": {Name: "cfg", Image: fix.art.Ref, Volumes: []spec.VolumeMount{{Name: "./conf", Path: "/conf"}}}}}
	df := "FROM scratch\nCOPY app /app/app\nUSER 65534\n"
	build := func(release, greeting string) runtime.Artifact {
		t.Helper()
		ctxDir := t.TempDir()
		for name, content := range map[string]string{"Dockerfile": df, "conf/greeting": greeting} {
			os.MkdirAll(filepath.Join(ctxDir, filepath.Dir(name)), 0o755)
			os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644)
		}
		b, _ := os.ReadFile(filepath.Join(fix.dir, "app"))
		os.WriteFile(filepath.Join(ctxDir, "app"), b, 0o755)
		art, err := e.rt.Build(e.ctx, runtime.BuildRequest{App: e.app, Release: release, ContextDir: ctxDir, Spec: sp})
		if err != nil {
			t.Fatalf("build %s: %v", release, err)
		}
		if art.Files != e.app+"/"+release {
			t.Fatalf("artifact %+v: want its files kept as %s/%s", art, e.app, release)
		}
		return art
	}
	cat := func(id string) (int, string) {
		var out syncBuffer
		code, err := e.rt.Exec(e.ctx, id, runtime.ExecSpec{Cmd: []string{"/app/app", "cat", "/conf/greeting"}, Stdout: &out, Stderr: &out})
		if err != nil {
			t.Fatalf("exec in %s: %v", id, err)
		}
		return code, out.String()
	}
	v1 := build("v1", "hello from v1")
	acc := runtime.InstanceSpec{App: e.app, Service: "cfg", Kind: runtime.KindAccessory, Image: fix.art.Ref, Artifact: v1,
		Command: []string{"/app/app", "serve"}, Port: 8080, Mounts: []runtime.Mount{{Name: "./conf", Target: "/conf"}}}
	e.start(acc)
	if code, out := cat(acc.ID()); code != 0 || out != "hello from v1" {
		t.Fatalf("the accessory reads %q (exit %d)", out, code)
	}
	var out syncBuffer
	if code, _ := e.rt.Exec(e.ctx, acc.ID(), runtime.ExecSpec{Cmd: []string{"/app/app", "write", "/conf/greeting", "overwritten"}, Stdout: &out, Stderr: &out}); code == 0 {
		t.Errorf("the accessory could write into its ./conf copy")
	}

	// The next release's build leaves the running accessory's files alone.
	v2 := build("v2", "hello from v2")
	if code, out := cat(acc.ID()); code != 0 || out != "hello from v1" {
		t.Errorf("after building v2 the running accessory reads %q (exit %d), want v1's file", out, code)
	}
	// Pruning v1 while the accessory mounts its files keeps them.
	if err := e.rt.RemoveArtifact(e.ctx, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.rt.filesDir(v1.Files)); err != nil {
		t.Fatalf("v1's files went while mounted: %v", err)
	}
	// Restarted with v2, the accessory reads v2's files; v1's go with the
	// next build.
	if err := e.rt.Remove(e.ctx, acc.ID()); err != nil {
		t.Fatal(err)
	}
	acc.Artifact = v2
	e.start(acc)
	if code, out := cat(acc.ID()); code != 0 || out != "hello from v2" {
		t.Errorf("restarted with v2 the accessory reads %q (exit %d)", out, code)
	}
	build("v3", "hello from v3")
	if _, err := os.Stat(e.rt.filesDir(v1.Files)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("v1's files are still there once nothing mounts them: %v", err)
	}
	if _, err := os.Stat(e.rt.filesDir(v2.Files)); err != nil {
		t.Errorf("v2's files: %v", err)
	}
}

// A server that started while no engine answered gets a Lazy runtime: it
// lists nothing and fails saying how to fix it, then connects (no server
// restart) once the engine answers (here by its background retries, which
// then call the server's hook once), and reports the events of what it
// runs.
func TestLazyConnectsOnceTheEngineAnswers(t *testing.T) {
	t.Parallel()
	fixture(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "engine.sock")
	o := options(filepath.Join(dir, "data"))
	o.Host = "unix://" + sock
	l := NewLazy(o)
	t.Cleanup(func() {
		l.Close()
		removeAll(o.Prefix)
	})
	ctx := context.Background()
	app := "app" + prefixFor(t.Name())[3:9]
	web := runtime.InstanceSpec{App: app, Service: "web", Release: "v1", Index: 1, Kind: runtime.KindService,
		Artifact: fix.art, Command: []string{"./app", "serve"}, Port: 8080, Publish: true, StopTimeout: 5 * time.Second}

	if ins, err := l.List(ctx, runtime.Filter{}); err != nil || len(ins) != 0 {
		t.Fatalf("List without an engine: %v %v, want nothing", ins, err)
	}
	if _, err := l.Start(ctx, web); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "start Docker") {
		t.Fatalf("Start without an engine: %v, want ErrUnavailable and how to fix it", err)
	}
	events := l.Events(ctx)
	// The server's background retries, and what it runs once connected.
	var calls atomic.Int32
	connected := make(chan struct{})
	l.Retry(20*time.Millisecond, 100*time.Millisecond, func() {
		if calls.Add(1) == 1 {
			close(connected)
		}
	})

	// The engine answers at sock from now on (a forwarder to the real one).
	dockersock.Forward(t, sock)
	select {
	case <-connected:
	case <-time.After(time.Minute):
		t.Fatal("the retries did not connect within a minute of the engine answering")
	}
	if !l.Connected() {
		t.Fatal("onConnect ran but not connected")
	}
	in, err := l.Start(ctx, web)
	if err != nil {
		t.Fatalf("Start once the engine answers: %v", err)
	}
	waitHTTP(t, in.Addr, "/health")
	if ins, err := l.List(ctx, runtime.Filter{App: app}); err != nil || len(ins) != 1 || ins[0].ID != web.ID() {
		t.Fatalf("List once connected: %+v %v", ins, err)
	}
	if out, err := docker("kill", o.Prefix+"-"+web.ID()); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	nextEvent(t, events, web.ID(), runtime.EventCrash)
	nextEvent(t, events, web.ID(), runtime.EventRestart)
	if n := calls.Load(); n != 1 {
		t.Fatalf("onConnect ran %d times, want once", n)
	}
}

// A service's files ("./custom" of the upload) are kept with the release
// and mounted read-only into its instances, as an accessory's are.
func TestServiceFilesReadOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sp := &spec.Spec{App: e.app, Runtime: Name, Build: &spec.Build{Dockerfile: "Dockerfile", Workdir: "/app"},
		Services: map[string]*spec.Service{"web": {Name: "web", Files: []spec.VolumeMount{{Name: "./custom", Path: "/app/custom"}}}}}
	ctxDir := t.TempDir()
	for name, content := range map[string]string{"Dockerfile": "FROM scratch\nCOPY app /app/app\nUSER 65534\n", "custom/static/site.css": "body{}"} {
		os.MkdirAll(filepath.Join(ctxDir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644)
	}
	b, _ := os.ReadFile(filepath.Join(fix.dir, "app"))
	os.WriteFile(filepath.Join(ctxDir, "app"), b, 0o755)
	art, err := e.rt.Build(e.ctx, runtime.BuildRequest{App: e.app, Release: "v1", ContextDir: ctxDir, Spec: sp})
	if err != nil {
		t.Fatal(err)
	}
	if art.Files != e.app+"/v1" {
		t.Fatalf("artifact %+v: want the service's files kept as %s/v1", art, e.app)
	}
	web := runtime.InstanceSpec{App: e.app, Service: "web", Release: "v1", Index: 1, Kind: runtime.KindService, Artifact: art,
		Command: []string{"/app/app", "serve"}, Port: 8080, Mounts: []runtime.Mount{{Name: "./custom", Target: "/app/custom"}}}
	e.start(web)
	var out syncBuffer
	if code, err := e.rt.Exec(e.ctx, web.ID(), runtime.ExecSpec{Cmd: []string{"/app/app", "cat", "/app/custom/static/site.css"}, Stdout: &out, Stderr: &out}); err != nil || code != 0 || out.String() != "body{}" {
		t.Fatalf("the service reads %q (exit %d, %v)", out.String(), code, err)
	}
	var wout syncBuffer
	if code, _ := e.rt.Exec(e.ctx, web.ID(), runtime.ExecSpec{Cmd: []string{"/app/app", "write", "/app/custom/static/site.css", "x"}, Stdout: &wout, Stderr: &wout}); code == 0 {
		t.Errorf("the service could write into its ./custom copy")
	}
}
