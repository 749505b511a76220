// Package e2e drives the built moorage binary exactly as a user would: a
// `moorage server` process, the CLI against its socket, examples/hello as
// the app, and HTTP clients through the server's proxy.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/paths"
	"github.com/moorage/moorage/internal/testutil/kubetest"
	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

var (
	binary   string // the built moorage binary
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "moorage-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "moorage")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/moorage")
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build moorage:", err)
		return 1
	}
	takeParallel()
	return m.Run()
}

// server is a `moorage server` process.
type server struct {
	t       testing.TB
	dataDir string
	http    string // proxy address
	https   string // HTTPS address
	cmd     *exec.Cmd
	log     *bytes.Buffer
	logMu   *sync.Mutex
	exited  chan struct{}
	env     []string
	// runtime is passed to every deploy as --runtime ("" = the spec's);
	// prefix isolates a docker server's containers, networks, volumes and
	// images on the shared engine.
	runtime string
	prefix  string
	// args are extra `moorage server` flags.
	args []string
	// swarm is the cluster of a swarm server (runtime "swarm"), and
	// shared the host directory its apps' data volume is bound to on every
	// node (the nodes share this machine's filesystem), so that the
	// checks of migrate.log and scheduler.log see every node's writes.
	// On a kubernetes server, shared is its --kube-volume-dir.
	swarm  *swarmtest.Cluster
	shared string
	// kube is the cluster of a kubernetes server (runtime "kubernetes");
	// its volumes are hostPath volumes under shared (--kube-volume-dir).
	kube *kubetest.Cluster
}

// freePort returns a free loopback port for a server a test starts (and
// may restart) later. It comes from 12000-21999: below both the kernel's
// ephemeral range, where the tests' own outgoing connections could take it
// before the server binds it, and the process runtime's instance ports
// (the 10000 below the ephemeral range); and it is never handed out twice
// in one test run.
func freePort(t testing.TB) string {
	t.Helper()
	portsGiven.Lock()
	defer portsGiven.Unlock()
	for range 1000 {
		port := 12000 + rand.IntN(10000)
		if portsGiven.m[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken by something else
		}
		ln.Close()
		portsGiven.m[port] = true
		return ln.Addr().String()
	}
	t.Fatal("no free port in 127.0.0.1:12000-21999")
	return ""
}

var portsGiven = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// startServer starts a server on a fresh data dir.
func startServer(t testing.TB, env ...string) *server {
	t.Helper()
	return startServerRT(t, "", env...)
}

// startServerRT starts a server whose deploys use runtime rt.
func startServerRT(t testing.TB, rt string, env ...string) *server {
	t.Helper()
	return startServerArgs(t, rt, nil, env...)
}

// startServerArgs starts a server with extra flags.
func startServerArgs(t testing.TB, rt string, args []string, env ...string) *server {
	t.Helper()
	var c *swarmtest.Cluster
	switch rt {
	case "swarm":
		c = swarmtest.Start(t, swarmtest.Options{HeartbeatPeriod: time.Second})
	case "kubernetes":
		// The tests of TestKubernetes share its cluster.
		k := laneCluster
		if k == nil {
			k = kubetest.Start(context.Background(), t)
		}
		return startServerClusters(t, rt, nil, k, args, env...)
	}
	return startServerOn(t, rt, c, args, env...)
}

// startServerOn starts a server with extra flags; a swarm server's
// runtime runs on the cluster c.
func startServerOn(t testing.TB, rt string, c *swarmtest.Cluster, args []string, env ...string) *server {
	t.Helper()
	return startServerClusters(t, rt, c, nil, args, env...)
}

// startServerClusters starts a server with extra flags; a swarm server's
// runtime runs on the swarm c, a kubernetes server's on the cluster k.
func startServerClusters(t testing.TB, rt string, c *swarmtest.Cluster, k *kubetest.Cluster, args []string, env ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: t.TempDir(), http: freePort(t), https: freePort(t), runtime: rt, args: args}
	if rt == "docker" {
		requireDocker(t)
	}
	if rt == "swarm" {
		s.swarm = c
		s.args = append(s.args, swarmArgs(t, s.swarm)...)
		s.shared = t.TempDir()
		os.Chmod(s.shared, 0o777)
	}
	if rt == "kubernetes" {
		requireDocker(t) // images are built by this machine's Docker
		if k.Registry == "" {
			t.Fatal("the cluster has no registry: install docker-registry (scripts/test-deps)")
		}
		s.kube = k
		s.shared = t.TempDir()
		s.args = append(s.args, kubeArgs(s.kube, s.shared)...)
	}
	// Unique among the servers running at once, on every runtime: a
	// process-runtime server reaches the Docker Engine too (a later
	// deploy may move to it, and it lists what it finds there), and must
	// never take another test's (or benchmark's) containers for its own.
	s.prefix = fmt.Sprintf("mt%06x", rand.Uint32()&0xffffff)
	s.start(env...)
	t.Cleanup(func() { s.stopAll() })
	return s
}

// runtimes runs a test on each runtime, side by side (each has its own
// server, data dir, ports and docker prefix): process always, docker when
// an engine is reachable (required when MOORAGE_REQUIRE_DOCKER=1).
func runtimes(t *testing.T, fn func(t *testing.T, rt string)) {
	t.Parallel() // its subtests take the slots
	for _, rt := range []string{"process", "docker"} {
		t.Run(rt, func(t *testing.T) {
			parallel(t)
			fn(t, rt)
		})
	}
}

// hello is helloApp prepared for the server's runtime.
func (s *server) hello(t testing.TB, edits ...string) string {
	t.Helper()
	dir := helloApp(t, edits...)
	if s.runtime == "docker" || s.runtime == "swarm" || s.runtime == "kubernetes" {
		prepareDockerApp(t, dir)
	}
	if s.runtime == "swarm" {
		editSpec(t, dir, "  data: {mount: /app/data}", "  data: {mount: /app/data, driver: local, driver_opts: {type: none, o: bind, device: "+s.shared+"}}")
	}
	return dir
}

// start (re)starts the server process on the same data dir and port, and
// waits until it answers.
func (s *server) start(env ...string) {
	s.t.Helper()
	s.launch(env...)
	// The server answers once it has recovered what a kill interrupted:
	// finishing a deploy that had cut over drains the old web and swaps
	// the singleton, each within its timeouts, which on a machine loaded
	// by the whole suite (or across a swarm's nodes) can take a minute or
	// more. A deadline, not a wait: a server that answers at once is used
	// at once, and a slow one says so in the test's log.
	began := time.Now()
	defer func() {
		if d := time.Since(began); d > 30*time.Second {
			s.t.Logf("the server took %s to recover and answer", d.Round(time.Millisecond))
		}
	}()
	waitFor(s.t, 3*time.Minute, "server to answer", func() error {
		select {
		case <-s.exited:
			s.t.Fatalf("server exited at start:\n%s", s.logs())
		default:
		}
		_, _, code := s.run("version")
		if code != 0 {
			return fmt.Errorf("version exited %d", code)
		}
		out, _, _ := s.run("version")
		if !strings.Contains(out, "server: moorage") {
			return fmt.Errorf("not up: %s", out)
		}
		return nil
	})
}

// launch starts the server process without waiting for it to answer (a
// failpoint may kill it during its recovery).
func (s *server) launch(env ...string) {
	s.t.Helper()
	s.log, s.logMu = &bytes.Buffer{}, &sync.Mutex{}
	// As root, the process runtime runs apps as their own users, which
	// must reach the data dir, as they do a real one (/var/lib/moorage):
	// t.TempDir's parent is 0700.
	os.Chmod(filepath.Dir(s.dataDir), 0o711)
	args := []string{"server", "--data-dir", s.dataDir, "--http", s.http, "--https", s.https, "--log-level", "debug"}
	if s.prefix != "" {
		args = append(args, "--docker-prefix", s.prefix)
	}
	args = append(args, s.args...)
	s.cmd = exec.Command(binary, args...)
	s.env = append(os.Environ(), env...)
	s.cmd.Env = s.env
	w := &lockedWriter{mu: s.logMu, w: s.log}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { cmd.Wait(); close(ch) }(s.cmd, s.exited)
}

func (s *server) logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// stop sends SIGTERM and waits.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(90 * time.Second):
		s.t.Errorf("server did not stop on SIGTERM")
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// kill sends SIGKILL and waits.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// waitExit waits for the server to exit by itself (a failpoint killed it).
func (s *server) waitExit(timeout time.Duration) {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.t.Fatalf("server did not exit within %s:\n%s", timeout, s.logs())
	}
}

// stopAll stops the server and every instance it left running (the test
// is over): a fresh `moorage up`-like cleanup through the process tree.
func (s *server) stopAll() {
	select {
	case <-s.exited:
	default:
		s.stop()
	}
	// Instances outlive the server by design; kill their shims' sessions
	// and remove the containers.
	killInstances(s.dataDir)
	if s.prefix != "" {
		cleanupDocker(s.t, s.prefix)
	}
	if s.kube != nil {
		kubeCleanup(s)
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", tail(s.logs(), 150))
	}
}

// killInstances SIGKILLs every process whose environment or command line
// mentions the data dir (shims and their children), so tests leave nothing
// behind.
func killInstances(dataDir string) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if bytes.Contains(env, []byte(dataDir)) || bytes.Contains(cmdline, []byte(dataDir)) || strings.HasPrefix(cwd, dataDir) {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs the CLI against the server.
func (s *server) run(args ...string) (stdout, stderr string, code int) {
	return s.runIn("", args...)
}

func (s *server) runIn(dir string, args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return o.String(), e.String(), code
}

// mustRun runs the CLI and fails the test on a non-zero exit.
func (s *server) mustRun(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(args...)
	if code != 0 {
		s.t.Fatalf("moorage %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// socketOf is the data dir's control socket.
func socketOf(dataDir string) string { return paths.Socket(dataDir) }

// deploy deploys dir and returns the CLI output; it fails the test unless
// the exit code is want.
func (s *server) deploy(dir string, want int, extra ...string) string {
	s.t.Helper()
	args := append([]string{"deploy", dir}, extra...)
	if s.runtime != "" {
		args = append(args, "--runtime", s.runtime)
	}
	out, errOut, code := s.run(args...)
	if code != want {
		s.t.Fatalf("moorage deploy: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, out, errOut)
	}
	return out + errOut
}

// get fetches path through the proxy.
func (s *server) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + s.http + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitBody waits until GET path answers 200 with a body containing want.
func (s *server) waitBody(path, want string) string {
	s.t.Helper()
	var body string
	waitFor(s.t, 60*time.Second, "GET "+path+" to contain "+want, func() error {
		code, b, err := s.get(path)
		if err != nil {
			return err
		}
		body = b
		if code != 200 || !strings.Contains(b, want) {
			return fmt.Errorf("status %d body %q", code, b)
		}
		return nil
	})
	return body
}

// waitFor polls fn until it returns nil or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 20 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(wait)
		if wait < 500*time.Millisecond {
			wait *= 2
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// helloApp copies examples/hello into a fresh directory, applying edits to
// moorage.yaml (old → new replacements).
func helloApp(t testing.TB, edits ...string) string {
	t.Helper()
	dst := copyExampleTree(t, "hello", func(rel, _ string) bool {
		return rel == "hello" || rel == "data" || strings.HasPrefix(rel, ".moorage")
	})
	editSpec(t, dst, edits...)
	return dst
}

// copyExampleTree copies examples/NAME into a fresh temporary directory,
// leaving out what skip says (by path relative to the example, and name):
// build outputs and local state.
func copyExampleTree(t testing.TB, name string, skip func(rel, base string) bool) string {
	t.Helper()
	src := filepath.Join(repoRoot, "examples", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if skip(rel, d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// editSpec applies old → new replacements to DIR/moorage.yaml.
func editSpec(t testing.TB, dir string, edits ...string) {
	t.Helper()
	p := filepath.Join(dir, "moorage.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("moorage.yaml has no %q to replace", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setMessage writes message.txt.
func setMessage(t testing.TB, dir, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "message.txt"), []byte(msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fastSpec trims the example's timings for tests that are not about them.
var fastSpec = []string{"monitor: 5s", "monitor: 1s", "    command: ./hello worker\n", "    command: ./hello worker\n    min_ready: 1s\n"}

// volumeFile reads a file of app's data volume.
func volumeFile(s *server, app, name string) string {
	b, _ := os.ReadFile(filepath.Join(s.volumePath(app, "data"), name))
	return string(b)
}

// volumePath is the host directory of a volume.
func (s *server) volumePath(app, name string) string {
	if s.runtime == "docker" {
		return dockerVolumePath(s.t, s.prefix, app, name)
	}
	if s.runtime == "swarm" && name == "data" {
		return s.shared
	}
	if s.runtime == "kubernetes" {
		return kubeVolumePath(s, app, name)
	}
	return filepath.Join(s.dataDir, "volumes", app, name)
}

// psJSON returns `moorage ps --json`.
func (s *server) ps(app string) psStatus {
	s.t.Helper()
	out := s.mustRun("ps", "-a", app, "--json")
	var st psStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("ps --json: %v\n%s", err, out)
	}
	return st
}

type psStatus struct {
	Active    string       `json:"active"`
	Instances []psInstance `json:"instances"`
}

type psInstance struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Release   string    `json:"release"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	PID       int       `json:"pid"`
	Restarts  int       `json:"restarts"`
	Routed    bool      `json:"routed"`
	Health    string    `json:"health"`
	LastErr   string    `json:"last_error"`
	Node      string    `json:"node"` // swarm
	Down      bool      `json:"unreachable"`
	WarmUntil time.Time `json:"warm_until"` // a web instance kept warm after a deploy (deploy.keep_warm)
}

// serving is st's instances without the web instances kept warm after the
// last deploy (deploy.keep_warm): what the active release runs, and
// accessories and tasks.
func (st psStatus) serving() []psInstance {
	var out []psInstance
	for _, in := range st.Instances {
		if in.WarmUntil.IsZero() {
			out = append(out, in)
		}
	}
	return out
}

// checkWarm fails unless st's warm instances are web instances of one
// release other than the active one, unrouted.
func checkWarm(st psStatus) error {
	rel := ""
	for _, in := range st.Instances {
		if in.WarmUntil.IsZero() {
			continue
		}
		if in.Kind != "service" || in.Routed || in.Release == st.Active || (rel != "" && in.Release != rel) {
			return fmt.Errorf("warm instance %s (%s of %s, routed %v; active %s, warm release %q)", in.ID, in.Kind, in.Release, in.Routed, st.Active, rel)
		}
		rel = in.Release
	}
	return nil
}

// scanLines splits text into lines.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
