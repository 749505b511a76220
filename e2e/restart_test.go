package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServerRestartUnderLoad restarts the server under load, three ways,
// and counts the refused and failed requests of each:
//
//   - a graceful restart (SIGHUP: the listeners are handed to a new process
//     of the same binary, which serves before the old one stops accepting);
//   - an upgrade (a newly built moorage put in place of the binary, then
//     SIGHUP);
//   - a SIGKILL while the listening sockets are held, as systemd's socket
//     activation holds them (a small parent here), and a new server started
//     with them (LISTEN_FDS).
//
// The first two must refuse and fail nothing; the third only adds latency
// (requests wait in the socket's backlog). A handover to a broken binary
// leaves the old server serving, and it still stops cleanly on SIGTERM. The
// instances keep running throughout.
func TestServerRestartUnderLoad(t *testing.T) {
	t.Parallel() // its subtests take the slots
	t.Run("handover", testRestartHandover)
	t.Run("sigkill-held-sockets", testRestartSIGKILLHeld)
	t.Run("slow-recovery", testRestartSlowRecovery)
}

// restartServer is a moorage server whose process changes: its pid is
// read from the data dir's lock file.
type restartServer struct {
	*server
	bin string   // the binary the server runs (replaced for an upgrade)
	log *os.File // the server processes' shared stdout and stderr
}

func newRestartServer(t *testing.T) *restartServer {
	dir := t.TempDir()
	// As root, the process runtime runs apps as their own users, which must
	// reach the data dir (DIR/data) as they do a real one: t.TempDir's
	// directories are 0700.
	os.Chmod(dir, 0o711)
	os.Chmod(filepath.Dir(dir), 0o711)
	bin := filepath.Join(dir, "moorage")
	copyFile(t, binary, bin, 0o755)
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	rs := &restartServer{server: &server{t: t, dataDir: filepath.Join(dir, "data"), http: freePort(t), https: freePort(t)}, bin: bin, log: log}
	t.Cleanup(func() {
		if pid := rs.pid(); pid > 0 && processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		killInstances(rs.dataDir)
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("server log:\n%s", tail(string(b), 150))
		}
		log.Close()
	})
	return rs
}

func (rs *restartServer) args() []string {
	return []string{"server", "--data-dir", rs.dataDir, "--http", rs.http, "--https", rs.https, "--log-level", "debug"}
}

// pid is the running server's pid (0 if none).
func (rs *restartServer) pid() int {
	b, _ := os.ReadFile(filepath.Join(rs.dataDir, "moorage.lock"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (rs *restartServer) logText() string {
	b, _ := os.ReadFile(rs.log.Name())
	return string(b)
}

// waitServing waits until a server other than old answers the API with a
// version containing want.
func (rs *restartServer) waitServing(old int, want string) int {
	rs.t.Helper()
	var pid int
	waitFor(rs.t, 90*time.Second, "the new server to answer", func() error {
		pid = rs.pid()
		if pid == 0 || pid == old {
			return fmt.Errorf("server pid %d (old %d)", pid, old)
		}
		out, errOut, code := rs.run("version")
		if code != 0 || !strings.Contains(out, "server: moorage "+want) {
			return fmt.Errorf("version: exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	return pid
}

// waitGone waits until pid has exited.
func waitGone(t *testing.T, pid int, timeout time.Duration, what string) {
	t.Helper()
	waitFor(t, timeout, what, func() error {
		if processAlive(pid) {
			return fmt.Errorf("pid %d still runs", pid)
		}
		return nil
	})
}

// webPIDs returns the pids of app's instances, sorted.
func webPIDs(s *server, app string) []int {
	var out []int
	for _, in := range s.ps(app).Instances {
		if in.PID > 0 {
			out = append(out, in.PID)
		}
	}
	slices.Sort(out)
	return out
}

// phase tallies the requests that started in a window.
type phase struct {
	name            string
	start, end      time.Time
	requests        int
	refused, failed int
	maxLatency      time.Duration
	firstFailure    string
}

func tally(name string, rs []result, start, end time.Time) phase {
	p := phase{name: name, start: start, end: end}
	for _, r := range rs {
		if r.end.Before(start) || r.start.After(end) {
			continue
		}
		p.requests++
		if d := r.end.Sub(r.start); d > p.maxLatency {
			p.maxLatency = d
		}
		if r.failed() {
			if r.err != nil && errors.Is(r.err, syscall.ECONNREFUSED) {
				p.refused++
			} else {
				p.failed++
			}
			if p.firstFailure == "" {
				p.firstFailure = failures([]result{r})[0]
			}
		}
	}
	return p
}

func (p phase) String() string {
	return fmt.Sprintf("%s: %d requests, %d refused, %d failed, slowest %s", p.name, p.requests, p.refused, p.failed, p.maxLatency.Round(time.Millisecond))
}

func testRestartHandover(t *testing.T) {
	parallel(t)
	rs := newRestartServer(t)
	// systemd's notification socket (Type=notify, NotifyAccess=all): the
	// server says READY=1, and after a handover the new process names
	// itself the main one (MAINPID).
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "notify.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	notes := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				return
			}
			notes <- string(buf[:n])
		}
	}()
	waitNote := func(want string) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case n := <-notes:
				if n == want {
					return
				}
			case <-timeout:
				t.Fatalf("systemd was not notified %q", want)
			}
		}
	}
	cmd := exec.Command(rs.bin, rs.args()...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.LocalAddr().String())
	cmd.Stdout, cmd.Stderr = rs.log, rs.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	rs.waitServing(0, "")
	waitNote("READY=1")
	app := helloApp(t, fastSpec...)
	setMessage(t, app, "before the restarts")
	rs.deploy(app, 0)
	rs.waitBody("/", "message=before the restarts")
	instances := webPIDs(rs.server, "hello")

	ld := startMixedLoader(rs.http, "/", 2, 1)
	var phases []phase
	waitLoad := func(n int) {
		want := ld.count() + n
		waitFor(t, 30*time.Second, "load", func() error {
			if ld.count() < want {
				return fmt.Errorf("%d requests", ld.count())
			}
			return nil
		})
	}
	waitLoad(50)

	// Graceful restart: SIGHUP.
	start := time.Now()
	old := rs.pid()
	syscall.Kill(old, syscall.SIGHUP)
	pid := rs.waitServing(old, "")
	waitNote("MAINPID=" + strconv.Itoa(pid) + "\nREADY=1")
	waitGone(t, old, 60*time.Second, "the old server to exit after the handover")
	waitLoad(50)
	phases = append(phases, phase{name: "graceful restart (SIGHUP)", start: start, end: time.Now()})

	// Upgrade: a newly built moorage in place of the binary, then SIGHUP.
	upgraded := filepath.Join(filepath.Dir(rs.bin), "moorage.new")
	build := exec.Command("go", "build", "-ldflags", "-X github.com/moorage/moorage/internal/version.Version=v9.9.9-upgrade", "-o", upgraded, "./cmd/moorage")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the upgrade: %v\n%s", err, out)
	}
	if err := os.Rename(upgraded, rs.bin); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	old = pid
	syscall.Kill(old, syscall.SIGHUP)
	pid = rs.waitServing(old, "v9.9.9-upgrade")
	waitGone(t, old, 60*time.Second, "the old server to exit after the upgrade")
	waitLoad(50)
	phases = append(phases, phase{name: "upgrade to a new binary (SIGHUP)", start: start, end: time.Now()})

	// A broken binary: the handover fails, the old server keeps serving.
	broken := rs.bin + ".broken"
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'broken moorage' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, rs.bin); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	syscall.Kill(pid, syscall.SIGHUP)
	waitFor(t, 60*time.Second, "the failed handover to be logged", func() error {
		if !strings.Contains(rs.logText(), "handover failed") {
			return errors.New("not yet")
		}
		return nil
	})
	if got := rs.pid(); got != pid || !processAlive(pid) {
		t.Fatalf("after a failed handover the server is pid %d (alive %v), want %d", got, processAlive(pid), pid)
	}
	if out := rs.mustRun("version"); !strings.Contains(out, "v9.9.9-upgrade") {
		t.Fatalf("after a failed handover: version %s", out)
	}
	waitLoad(50)
	phases = append(phases, phase{name: "handover to a broken binary (SIGHUP)", start: start, end: time.Now()})
	results := ld.stop()

	for i, p := range phases {
		phases[i] = tally(p.name, results, p.start, p.end)
		t.Log(phases[i])
		if phases[i].refused+phases[i].failed > 0 {
			t.Errorf("%s; first failure: %s", phases[i], phases[i].firstFailure)
		}
	}
	if f := failures(results); len(f) > 0 {
		t.Errorf("%d of %d requests failed; first: %s", len(f), len(results), f[0])
	}
	if got := webPIDs(rs.server, "hello"); !slices.Equal(got, instances) {
		t.Errorf("instances changed across the restarts: %v, were %v", got, instances)
	}

	// The server that refused the broken binary still stops cleanly.
	syscall.Kill(pid, syscall.SIGTERM)
	waitGone(t, pid, 60*time.Second, "the server to stop on SIGTERM after a failed handover")
	if _, err := os.Stat(socketOf(rs.dataDir)); err == nil {
		// A clean stop removes its socket (it bound it: no systemd here).
		// The handed-over one keeps the file of the socket it was given.
		t.Logf("socket file kept after SIGTERM (passed by the previous server)")
	}
}

// testRestartSIGKILLHeld holds the sockets as systemd does: a new server
// started after a SIGKILL takes them over, and the requests made meanwhile
// wait in their backlog.
func testRestartSIGKILLHeld(t *testing.T) {
	parallel(t)
	rs := newRestartServer(t)
	launch := rs.holdSockets()
	cmd := launch()
	rs.waitServing(0, "")
	app := helloApp(t, fastSpec...)
	setMessage(t, app, "across a crash")
	rs.deploy(app, 0)
	rs.waitBody("/", "message=across a crash")
	instances := webPIDs(rs.server, "hello")

	ld := startLoader(rs.http, "/", 3)
	waitFor(t, 30*time.Second, "load", func() error {
		if ld.count() < 100 {
			return fmt.Errorf("%d requests", ld.count())
		}
		return nil
	})
	start := time.Now()
	old := cmd.Process.Pid
	cmd.Process.Kill()
	waitGone(t, old, 30*time.Second, "the killed server to be gone")
	killed := time.Now()
	launch()
	rs.waitServing(old, "")
	n := ld.count()
	waitFor(t, 30*time.Second, "load after the restart", func() error {
		if ld.count() < n+100 {
			return fmt.Errorf("%d requests", ld.count())
		}
		return nil
	})
	results := ld.stop()
	p := tally("SIGKILL, sockets held (LISTEN_FDS)", results, start, time.Now())
	t.Log(p)
	if p.refused > 0 {
		t.Errorf("%s; first failure: %s", p, p.firstFailure)
	}
	// A request in flight inside the killed process dies with it; every
	// other one only waits.
	for _, r := range results {
		if r.failed() && !(r.start.Before(killed) && r.end.After(start)) {
			t.Errorf("a request that was not in flight at the kill failed: %s", failures([]result{r})[0])
		}
	}
	if p.failed > 0 {
		t.Logf("%d requests in flight at the SIGKILL failed (first: %s)", p.failed, p.firstFailure)
	}
	if got := webPIDs(rs.server, "hello"); !slices.Equal(got, instances) {
		t.Errorf("instances changed across the crash: %v, were %v", got, instances)
	}
}

// testRestartSlowRecovery: one app whose recovery is slow (an instance of
// an interrupted deploy ignores SIGTERM for its whole stop_timeout) does
// not keep another app from being served at once after a crash: the proxy
// serves the recorded routes while recovery runs.
func testRestartSlowRecovery(t *testing.T) {
	parallel(t)
	rs := newRestartServer(t)
	launch := rs.holdSockets()
	cmd := launch()
	rs.waitServing(0, "")
	hello := helloApp(t, fastSpec...)
	rs.deploy(hello, 0)
	rs.waitBody("/", "release=v1")
	const stopTimeout = 15 * time.Second
	slow := helloApp(t, append(slices.Clone(fastSpec), "app: hello", "app: slow",
		"    health: {path: /healthz, interval: 1s}", "    health: {path: /healthz, interval: 1s}\n    http: {hosts: [slow.test]}",
		"    command: ./hello worker\n    min_ready: 1s\n", "    command: sh -c 'trap \"\" TERM; exec sleep 100000'\n    min_ready: 1s\n    stop_timeout: 15s\n")...)
	rs.deploy(slow, 0)

	// A deploy of slow killed after its new instances started: the next
	// start must remove them, and its worker makes that take stop_timeout.
	old := cmd.Process.Pid
	cmd.Process.Kill()
	waitGone(t, old, 30*time.Second, "the server to be killed")
	cmd = launch("MOORAGE_FAILPOINTS=after:start")
	rs.waitServing(old, "")
	setMessage(t, slow, "v2")
	rs.run("deploy", slow) // the failpoint kills the server
	waitGone(t, cmd.Process.Pid, 60*time.Second, "the failpoint to kill the server")

	ld := startLoader(rs.http, "/", 2)
	defer ld.stop()
	restarted := time.Now()
	launch()
	// hello is served from the recorded routes while slow is recovered:
	// long before the control API answers (it waits for the recovery).
	var served time.Time
	waitFor(t, 30*time.Second, "hello to be served", func() error {
		code, body, err := rs.get("/")
		if err != nil || code != 200 || !strings.Contains(body, "release=v1") {
			return fmt.Errorf("GET /: %d %q %v", code, body, err)
		}
		served = time.Now()
		return nil
	})
	rs.waitServing(cmd.Process.Pid, "")
	apiUp := time.Now()
	results := ld.stop()
	t.Logf("after the restart: hello served in %s, the control API (after recovery) in %s", served.Sub(restarted).Round(time.Millisecond), apiUp.Sub(restarted).Round(time.Millisecond))
	if apiUp.Sub(restarted) < stopTimeout-2*time.Second {
		t.Fatalf("the recovery took %s: slow's worker did not hold it (the test proves nothing)", apiUp.Sub(restarted))
	}
	if served.Sub(restarted) > stopTimeout/2 {
		t.Errorf("hello was served %s after the restart: the slow app's recovery held it", served.Sub(restarted))
	}
	p := tally("restart with a slow recovery", results, restarted, apiUp)
	t.Log(p)
	if p.refused+p.failed > 0 {
		t.Errorf("%s; first failure: %s", p, p.firstFailure)
	}
}

// holdSockets binds the proxy's and the control socket, holds them as
// systemd's moorage.socket does, and returns a function that starts a
// server on them (LISTEN_FDS), with extra environment.
func (rs *restartServer) holdSockets() func(env ...string) *exec.Cmd {
	if err := os.MkdirAll(rs.dataDir, 0o711); err != nil {
		rs.t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", rs.http)
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { httpLn.Close() })
	apiLn, err := net.Listen("unix", socketOf(rs.dataDir))
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { apiLn.Close() })
	// The holder never accepts; blocking mode on its copies is harmless
	// (the server sets the sockets non-blocking again).
	httpF, err := httpLn.(*net.TCPListener).File()
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { httpF.Close() })
	apiF, err := apiLn.(*net.UnixListener).File()
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { apiF.Close() })
	return func(env ...string) *exec.Cmd {
		// LISTEN_PID must be the server's own pid: a shell exports it and
		// execs the server, as systemd does after its fork.
		cmd := exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, rs.bin}, rs.args()...)...)
		cmd.Env = append(append(os.Environ(), "LISTEN_FDS=2", "LISTEN_FDNAMES=http:api"), env...)
		cmd.ExtraFiles = []*os.File{httpF, apiF}
		cmd.Stdout, cmd.Stderr = rs.log, rs.log
		if err := cmd.Start(); err != nil {
			rs.t.Fatal(err)
		}
		go cmd.Wait()
		return cmd
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
