package e2e

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// celeryTasks is the worker's code: tasks that record in Redis when they
// start and when they finish, with the release that ran them, and signal
// handlers that record when a worker is ready and when its warm shutdown
// begins.
const celeryTasks = `import os, sys, time
import redis
from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

BROKER = os.environ["BROKER_URL"]
app = Celery("tasks", broker=BROKER)
rdb = redis.Redis.from_url(BROKER)
RELEASE = os.environ.get("MOORAGE_RELEASE", "-")

@worker_ready.connect
def ready(**kw):
    rdb.set("ready:" + RELEASE, "1")

@worker_shutting_down.connect
def shutting_down(**kw):
    rdb.set("shutdown:" + RELEASE, "1")

@app.task
def work(name, secs, hold):
    rdb.rpush("started", "%s %s" % (name, RELEASE))
    # hold: wait until this worker's warm shutdown has begun, so that the
    # task is surely running when the deploy stops the worker.
    deadline = time.time() + 120
    while hold and not rdb.get("shutdown:" + RELEASE) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(secs)
    rdb.rpush("done", "%s %s" % (name, RELEASE))

if __name__ == "__main__":
    for a in sys.argv[1:]:
        name, secs, hold = (a + ":").split(":")[:3]
        work.delay(name, float(secs), hold == "hold")
`

const celerySpec = `app: cel
runtime: process
env:
  BROKER_URL: redis://%s/0
  PYTHONDONTWRITEBYTECODE: "1"
  NOTE: one
services:
  worker:
    command: /usr/bin/python3 -m celery -A tasks worker --concurrency 3 --loglevel info --without-gossip --without-mingle --without-heartbeat
    min_ready: 1s
    stop_timeout: 60s
`

// requireCelery returns what the Celery test needs from Debian, or fails
// (MOORAGE_REQUIRE_DOCKER=1) or skips naming the packages to install.
func requireCelery(t testing.TB) {
	t.Helper()
	var missing []string
	for _, p := range []struct{ path, pkg string }{
		{"/usr/lib/python3/dist-packages/celery", "python3-celery"},
		{"/usr/lib/python3/dist-packages/redis", "python3-redis"},
		{"/usr/bin/redis-server", "redis-server"},
		{"/usr/bin/redis-cli", "redis-tools"},
	} {
		if _, err := os.Stat(p.path); err != nil {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + " (apt-get install " + strings.Join(missing, " ") + ", or run scripts/test-deps)"
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// redisServer is a redis-server the test runs.
type redisServer struct {
	t    *testing.T
	port string
}

func startRedis(t *testing.T, bind ...string) *redisServer {
	t.Helper()
	_, port, _ := strings.Cut(freePort(t), ":")
	args := []string{"--port", port, "--bind", strings.Join(append([]string{"127.0.0.1"}, bind...), " "),
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", t.TempDir()}
	cmd := exec.Command("/usr/bin/redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := &redisServer{t: t, port: port}
	waitFor(t, 20*time.Second, "redis-server to answer", func() error {
		if out := r.cli("PING"); out != "PONG" {
			return fmt.Errorf("PING: %q", out)
		}
		return nil
	})
	return r
}

func (r *redisServer) cli(args ...string) string {
	out, _ := exec.Command("/usr/bin/redis-cli", append([]string{"-p", r.port, "--raw"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

func (r *redisServer) list(key string) []string {
	out := r.cli("LRANGE", key, "0", "-1")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// enqueue sends work(name, secs) tasks through Celery's own client.
func (r *redisServer) enqueue(dir string, tasks ...string) {
	r.t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"tasks.py"}, tasks...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BROKER_URL=redis://127.0.0.1:"+r.port+"/0")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("enqueue %v: %v\n%s", tasks, err, out)
	}
}

// A deploy stops the old Celery worker while it runs tasks of a few
// seconds: the stop signal reaches its main process only (warm shutdown),
// so its prefork children finish every task. Real Celery and Redis from
// Debian's packages, on both runtimes.
//
// Jobs queued just after the old worker began its warm shutdown are also
// counted: kombu before 5.3 can lose one there (its Redis transport takes a
// message it never restores). The test reports them and fails only on a
// kombu that should not lose any; docs/django-celery.md has the settings
// that avoid it.
func TestCeleryTasksSurviveDeploy(t *testing.T) {
	requireCelery(t)
	runtimes(t, func(t *testing.T, rt string) {
		host := "127.0.0.1"
		var bind []string
		if rt == "docker" {
			requireDocker(t)
			host = dockerHostIP(t)
			bind = []string{host}
		}
		r := startRedis(t, bind...)
		s := startServerRT(t, rt)
		dir := filepath.Join(t.TempDir(), "cel")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		spec := fmt.Sprintf(celerySpec, net.JoinHostPort(host, r.port))
		files := map[string]string{"tasks.py": celeryTasks, "moorage.yaml": spec}
		if rt == "docker" {
			files["Dockerfile"] = "FROM " + celeryImage(t) + "\nWORKDIR /app\nCOPY tasks.py /app/\nUSER 65534:65534\n"
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		waitReady := func(rel string) {
			waitFor(t, 90*time.Second, "worker "+rel+" to be ready", func() error {
				if r.cli("GET", "ready:"+rel) != "1" {
					return fmt.Errorf("not ready")
				}
				return nil
			})
		}
		s.deploy(dir, 0)
		waitReady("v1")

		// Three tasks, one per prefork child of v1, that run 3 s more once
		// v1's warm shutdown has begun.
		long := []string{"long1:3:hold", "long2:3:hold", "long3:3:hold"}
		r.enqueue(dir, long...)
		waitFor(t, 30*time.Second, "v1 to start the long tasks", func() error {
			if n := len(r.list("started")); n < len(long) {
				return fmt.Errorf("%d started", n)
			}
			return nil
		})

		// A config change makes v2: v2 starts, then v1 is stopped.
		editSpec(t, dir, "NOTE: one", "NOTE: two")
		deployed := make(chan string, 1)
		go func() {
			out, errOut, code := s.run("deploy", dir, "--runtime", rt)
			deployed <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
		}()
		// Jobs queued 0.15–0.3 s after v1 began its warm shutdown.
		waitFor(t, 90*time.Second, "v1's warm shutdown", func() error {
			if r.cli("GET", "shutdown:v1") != "1" {
				return fmt.Errorf("v1 still running")
			}
			return nil
		})
		var window []string
		start := time.Now()
		for i, at := range []time.Duration{150, 200, 250, 300} {
			time.Sleep(time.Until(start.Add(at * time.Millisecond)))
			name := fmt.Sprintf("window%d", i+1)
			window = append(window, name)
			r.enqueue(dir, name+":0")
		}
		out := <-deployed
		if !strings.HasPrefix(out, "exit 0") {
			t.Fatalf("second deploy: %s", out)
		}
		waitReady("v2")

		// Every long task finished in v1, the worker that started it.
		done := r.list("done")
		for _, l := range long {
			name, _, _ := strings.Cut(l, ":")
			if !contains(done, name+" v1") {
				t.Errorf("task %s started in v1 did not complete there (done: %q, started: %q)", name, done, r.list("started"))
			}
		}

		// A sentinel queued after the deploy: once v2 ran it, every job
		// queued before it has been taken by a worker.
		r.enqueue(dir, "sentinel:0")
		waitFor(t, 60*time.Second, "the sentinel to run", func() error {
			if !contains(r.list("done"), "sentinel v2") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		var lost []string
		waitFor(t, 10*time.Second, "the window jobs to settle", func() error {
			done, lost = r.list("done"), nil
			for _, w := range window {
				if !contains(done, w+" v1") && !contains(done, w+" v2") {
					lost = append(lost, w)
				}
			}
			if len(lost) > 1 {
				return fmt.Errorf("%d not done: %v", len(lost), lost)
			}
			return nil
		})
		kombu := kombuVersion(t)
		t.Logf("%s: %d of %d jobs queued 0.15-0.3 s into v1's warm shutdown were lost %v (kombu %s; see docs/django-celery.md)", rt, len(lost), len(window), lost, kombu)
		if len(lost) > 0 && !strings.HasPrefix(kombu, "5.2.") && !strings.HasPrefix(kombu, "5.1.") {
			t.Errorf("kombu %s lost %v: only kombu < 5.3 is known to", kombu, lost)
		}
	})
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func kombuVersion(t *testing.T) string {
	out, err := exec.Command("/usr/bin/python3", "-c", "import kombu; print(kombu.__version__)").Output()
	if err != nil {
		t.Fatalf("kombu version: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// dockerHostIP is the host's address on docker0: containers reach the
// test's Redis there.
func dockerHostIP(t *testing.T) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("docker0: %v", err)
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address")
	return ""
}

// celeryImage imports a root filesystem made of the host's own files for
// /usr/bin/python3, its standard library, Celery, kombu and the Redis
// client (with the shared libraries they load), and returns its tag. There
// is no registry: this is how an image of Debian's packages is made here.
func celeryImage(t testing.TB) string {
	t.Helper()
	tag := fmt.Sprintf("moorage-e2e-celery:%d", time.Now().UnixNano())
	files := map[string]bool{"/usr/bin/python3": true}
	add := func(root string, skip ...string) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			for _, s := range skip {
				if d.Name() == s {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
			if !d.IsDir() {
				files[p] = true
			}
			return nil
		})
	}
	add("/usr/lib/python3.11", "test", "idlelib", "tkinter", "ensurepip", "lib2to3", "pydoc_data", "config-3.11-x86_64-linux-gnu", "turtledemo", "site-packages", "dist-packages")
	for _, pkg := range []string{"amqp", "billiard", "celery", "click", "click_didyoumean", "click_plugins", "click_repl", "kombu", "packaging", "prompt_toolkit", "pytz", "redis", "six.py", "vine", "wcwidth", "async_timeout", "dateutil", "deprecated", "wrapt"} {
		add("/usr/lib/python3/dist-packages/" + pkg)
	}
	add("/usr/share/zoneinfo", "right", "posix") // Debian's pytz reads it
	// The shared libraries of the interpreter and of every extension module.
	var elves []string
	for p := range files {
		if p == "/usr/bin/python3" || strings.HasSuffix(p, ".so") {
			elves = append(elves, p)
		}
	}
	for _, e := range elves {
		out, _ := exec.Command("ldd", e).Output()
		for _, l := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(l) {
				if strings.HasPrefix(f, "/") {
					files[f] = true
				}
			}
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, files)) }()
	cmd := exec.Command("docker", "import", "-", tag)
	cmd.Stdin = pr
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker("rmi", "-f", tag) })
	return tag
}

// writeRootfs writes files (symlinks resolved to their content) and /tmp
// as a tar stream.
func writeRootfs(w io.Writer, files map[string]bool) error {
	return writeRootfsExtra(w, files, nil, nil)
}
