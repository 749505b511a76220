package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deadline bounds every wait in these tests; generous for a busy machine.
const deadline = 30 * time.Second

// helloBin is the binary built once by TestMain.
var helloBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hello-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helloBin = filepath.Join(dir, "hello")
	build := exec.Command("go", "build", "-o", helloBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running hello process.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{} // closed when it has exited
	code           int           // exit status, valid once done is closed
}

// baseEnv is the test's environment without anything moorage or the tests
// would set, so the outer environment cannot leak into the app.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PORT=") || strings.HasPrefix(kv, "MOORAGE_") || strings.HasPrefix(kv, "HELLO_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start runs hello with args in dir, with env on top of baseEnv. The
// process is killed at the end of the test if it is still running.
func start(t *testing.T, dir string, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{name: strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(helloBin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = baseEnv()
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start hello %s: %v", p.name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.code = -2
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for p to exit and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(deadline):
		t.Fatalf("hello %s still running after %s\nstdout:\n%s\nstderr:\n%s", p.name, deadline, p.stdout.String(), p.stderr.String())
		return 0
	}
}

// stop sends SIGTERM and returns the exit status.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal hello %s: %v", p.name, err)
	}
	return p.wait(t)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) output() string {
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", p.stdout.String(), p.stderr.String())
}

// runHello runs hello to completion and returns the finished process.
func runHello(t *testing.T, dir string, env map[string]string, args ...string) *proc {
	t.Helper()
	p := start(t, dir, env, args...)
	p.wait(t)
	return p
}

// waitFor polls cond until it holds, failing the test after the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appDir returns a working directory holding a copy of message.txt.
func appDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("message.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "message.txt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lines returns the lines of a file, nil when it does not exist.
func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func contains(t *testing.T, path, substr string) bool {
	t.Helper()
	for _, l := range lines(t, path) {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// countJobs returns the number of job files in dir.
func countJobs(t *testing.T, dir string) int {
	t.Helper()
	names, err := jobFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

func checkLine(t *testing.T, line, pattern string) {
	t.Helper()
	if !regexp.MustCompile("^" + pattern + "$").MatchString(line) {
		t.Errorf("line %q does not match %q", line, pattern)
	}
}

var listenRE = regexp.MustCompile(`msg="web listening".* addr=0\.0\.0\.0:(\d+)`)

// startWeb starts `hello web` on a free port and returns it with its base URL.
func startWeb(t *testing.T, dir string, env map[string]string) (*proc, string) {
	t.Helper()
	env["PORT"] = "0"
	p := start(t, dir, env, "web")
	var port string
	waitFor(t, "web to listen", func() bool {
		if p.exited() {
			t.Fatalf("web exited with status %d\n%s", p.code, p.output())
		}
		m := listenRE.FindStringSubmatch(p.stdout.String())
		if m != nil {
			port = m[1]
		}
		return m != nil
	})
	return p, "http://127.0.0.1:" + port
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func expect(t *testing.T, url string, code int, body string) {
	t.Helper()
	gotCode, gotBody := get(t, url)
	if gotCode != code || gotBody != body {
		t.Errorf("GET %s = %d %q, want %d %q", url, gotCode, gotBody, code, body)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{nil, {"bogus"}, {"web", "extra"}} {
		p := runHello(t, dir, nil, args...)
		if p.code != 2 || !strings.Contains(p.stderr.String(), "usage: hello <command>") {
			t.Errorf("hello %q: status %d, want 2 and usage on stderr\n%s", args, p.code, p.output())
		}
	}
	if p := runHello(t, dir, nil, "bogus"); !strings.Contains(p.stderr.String(), `unknown command "bogus"`) {
		t.Errorf("hello bogus does not name the command\n%s", p.output())
	}
	if p := runHello(t, dir, nil, "--help"); p.code != 0 || !strings.Contains(p.stdout.String(), "usage:") {
		t.Errorf("hello --help: status %d\n%s", p.code, p.output())
	}
}

func TestWeb(t *testing.T) {
	dir := appDir(t)
	data := t.TempDir()
	p, url := startWeb(t, dir, map[string]string{
		"MOORAGE_RELEASE":     "v3",
		"MOORAGE_INSTANCE":    "hello-web-v3-1",
		"MOORAGE_SERVICE":     "web",
		"MOORAGE_VOLUME_DATA": data,
		"GREETING":            "ahoy there",
	})

	// message.txt is read at startup: changing it now changes nothing.
	if err := os.WriteFile(filepath.Join(dir, "message.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, url+"/", 200, "release=v3 message=Hello from moorage! instance=hello-web-v3-1\n")
	expect(t, url+"/healthz", 200, "ok")
	expect(t, url+"/env/GREETING", 200, "ahoy there")
	expect(t, url+"/env/MOORAGE_SERVICE", 200, "web")
	expect(t, url+"/env/NOT_SET_ANYWHERE", 404, "NOT_SET_ANYWHERE is not set\n")
	expect(t, url+"/slow?ms=1", 200, "slept ms=1 release=v3 instance=hello-web-v3-1\n")
	expect(t, url+"/inflight", 200, "0\n")
	expect(t, url+"/jobs", 200, `{"done":0,"queued":0}`+"\n")
	if code, _ := get(t, url+"/slow?ms=x"); code != 400 {
		t.Errorf("GET /slow?ms=x = %d, want 400", code)
	}
	if code, _ := get(t, url+"/nope"); code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}
	for _, size := range []int{0, 5, 100 << 10} {
		body := bytes.Repeat([]byte("x"), size)
		want := fmt.Sprintf("received=%d crc32=%08x release=v3 instance=hello-web-v3-1\n", size, crc32.ChecksumIEEE(body))
		if code, got := post(t, url+"/echo", body); code != 200 || got != want {
			t.Errorf("POST /echo with %d bytes = %d %q, want 200 %q", size, code, got, want)
		}
	}
	if code, _ := post(t, url+"/echo", make([]byte, 1<<20+1)); code != 413 {
		t.Errorf("POST /echo over 1 MiB = %d, want 413", code)
	}

	if code := p.stop(t); code != 0 {
		t.Fatalf("web exited with %d after SIGTERM\n%s", code, p.output())
	}
	out := p.stdout.String()
	for _, want := range []string{"web listening", "shutting down", "web stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "/healthz") {
		t.Errorf("web logs requests; it should not\n%s", out)
	}
}

func TestWebGracefulShutdown(t *testing.T) {
	p, url := startWeb(t, appDir(t), map[string]string{"MOORAGE_RELEASE": "v1", "MOORAGE_INSTANCE": "i1"})
	addr := strings.TrimPrefix(url, "http://")

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{}}
		resp, err := c.Get(url + "/slow?ms=1500")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	waitFor(t, "the slow request to be in flight", func() bool {
		_, body := get(t, url+"/inflight")
		return body == "1\n"
	})
	http.DefaultClient.CloseIdleConnections()

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web to stop accepting connections", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "slept ms=1500 release=v1 instance=i1\n" {
		t.Errorf("in-flight request during shutdown: %d %q %v, want it to finish", r.code, r.body, r.err)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("web exited with %d, want 0\n%s", code, p.output())
	}
}

func TestWebUnhealthy(t *testing.T) {
	p, url := startWeb(t, appDir(t), map[string]string{"HELLO_UNHEALTHY": "1", "MOORAGE_RELEASE": "v2"})
	expect(t, url+"/healthz", 503, "unhealthy: HELLO_UNHEALTHY=1\n")
	expect(t, url+"/", 200, "release=v2 message=Hello from moorage! instance=\n")
	expect(t, url+"/healthz", 503, "unhealthy: HELLO_UNHEALTHY=1\n")
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d\n%s", code, p.output())
	}
}

func TestCrashAfter(t *testing.T) {
	for _, cmd := range []string{"web", "worker", "scheduler"} {
		t.Run(cmd, func(t *testing.T) {
			p := start(t, appDir(t), map[string]string{"PORT": "0", "HELLO_CRASH_AFTER": "300ms"}, cmd)
			if code := p.wait(t); code != 3 {
				t.Errorf("status %d, want 3\n%s", code, p.output())
			}
			if !strings.Contains(p.stdout.String(), "crashing on purpose") {
				t.Errorf("no crash message\n%s", p.output())
			}
		})
	}
	p := runHello(t, appDir(t), map[string]string{"HELLO_CRASH_AFTER": "soon"}, "web")
	if p.code != 2 || !strings.Contains(p.stderr.String(), `HELLO_CRASH_AFTER="soon"`) {
		t.Errorf("bad HELLO_CRASH_AFTER: status %d, want 2 and an explanation\n%s", p.code, p.output())
	}
}

func TestCrashAfterRequests(t *testing.T) {
	p, url := startWeb(t, appDir(t), map[string]string{"HELLO_CRASH_AFTER_REQUESTS": "2", "MOORAGE_RELEASE": "v2"})
	expect(t, url+"/healthz", 200, "ok")
	expect(t, url+"/", 200, "release=v2 message=Hello from moorage! instance=\n")
	expect(t, url+"/healthz", 200, "ok")
	expect(t, url+"/", 200, "release=v2 message=Hello from moorage! instance=\n")
	if code := p.wait(t); code != 3 {
		t.Errorf("status %d, want 3\n%s", code, p.output())
	}
	if !strings.Contains(p.stdout.String(), "HELLO_CRASH_AFTER_REQUESTS") {
		t.Errorf("no crash message\n%s", p.output())
	}
	p = runHello(t, appDir(t), map[string]string{"HELLO_CRASH_AFTER_REQUESTS": "0"}, "web")
	if p.code != 2 || !strings.Contains(p.stderr.String(), `HELLO_CRASH_AFTER_REQUESTS="0"`) {
		t.Errorf("bad HELLO_CRASH_AFTER_REQUESTS: status %d, want 2 and an explanation\n%s", p.code, p.output())
	}
}

func TestUnhealthyAfterRequests(t *testing.T) {
	p, url := startWeb(t, appDir(t), map[string]string{"HELLO_UNHEALTHY_AFTER_REQUESTS": "2", "MOORAGE_RELEASE": "v2"})
	expect(t, url+"/healthz", 200, "ok")
	expect(t, url+"/", 200, "release=v2 message=Hello from moorage! instance=\n")
	expect(t, url+"/healthz", 200, "ok")
	expect(t, url+"/", 200, "release=v2 message=Hello from moorage! instance=\n")
	expect(t, url+"/healthz", 503, "unhealthy: HELLO_UNHEALTHY_AFTER_REQUESTS=2\n")
	expect(t, url+"/", 200, "release=v2 message=Hello from moorage! instance=\n")
	expect(t, url+"/healthz", 503, "unhealthy: HELLO_UNHEALTHY_AFTER_REQUESTS=2\n")
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d, want 0: it never crashes\n%s", code, p.output())
	}
	if !strings.Contains(p.stdout.String(), "turning unhealthy on purpose") {
		t.Errorf("no message when it turns unhealthy\n%s", p.output())
	}
	r := runHello(t, appDir(t), map[string]string{"HELLO_UNHEALTHY_AFTER_REQUESTS": "x"}, "web")
	if r.code != 2 || !strings.Contains(r.stderr.String(), `HELLO_UNHEALTHY_AFTER_REQUESTS="x"`) {
		t.Errorf("bad HELLO_UNHEALTHY_AFTER_REQUESTS: status %d, want 2 and an explanation\n%s", r.code, r.output())
	}
}

func TestWebWithoutMessage(t *testing.T) {
	p := runHello(t, t.TempDir(), map[string]string{"PORT": "0"}, "web")
	if p.code != 1 || !strings.Contains(p.stderr.String(), "message.txt") {
		t.Errorf("status %d, want 1 and an error naming message.txt\n%s", p.code, p.output())
	}
}

func appliedIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var ids []string
	for _, a := range s.Applied {
		ids = append(ids, a.ID)
	}
	return ids
}

func allMigrationIDs(t *testing.T) []string {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestMigrate(t *testing.T) {
	data := t.TempDir()
	want := allMigrationIDs(t)

	p := runHello(t, t.TempDir(), map[string]string{
		"MOORAGE_VOLUME_DATA": data, "MOORAGE_RELEASE": "v1", "HELLO_MIGRATE_SLEEP": "10ms",
	}, "migrate")
	if p.code != 0 {
		t.Fatalf("first migrate: status %d\n%s", p.code, p.output())
	}
	for _, id := range want {
		if !strings.Contains(p.stdout.String(), "applied "+id) {
			t.Errorf("first migrate does not say it applied %s\n%s", id, p.output())
		}
	}
	schemaPath := filepath.Join(data, "schema.json")
	if got := appliedIDs(t, schemaPath); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("applied %v, want %v", got, want)
	}
	before, _ := os.ReadFile(schemaPath)

	p = runHello(t, t.TempDir(), map[string]string{"MOORAGE_VOLUME_DATA": data, "MOORAGE_RELEASE": "v2"}, "migrate")
	if p.code != 0 || !strings.Contains(p.stdout.String(), "nothing to apply") {
		t.Fatalf("second migrate: status %d, want 0 and nothing applied\n%s", p.code, p.output())
	}
	if after, _ := os.ReadFile(schemaPath); !bytes.Equal(before, after) {
		t.Errorf("second migrate changed schema.json:\n%s\n---\n%s", before, after)
	}

	log := lines(t, filepath.Join(data, "migrate.log"))
	if len(log) != 4 {
		t.Fatalf("migrate.log has %d lines, want 4: %q", len(log), log)
	}
	for i, pat := range []string{`start v1 \d+`, `end v1 \d+`, `start v2 \d+`, `end v2 \d+`} {
		checkLine(t, log[i], pat)
	}
	if c := lines(t, filepath.Join(data, "migrate-conflicts.log")); c != nil {
		t.Errorf("conflicts logged without any conflict: %q", c)
	}
	if ents, _ := filepath.Glob(filepath.Join(data, ".*tmp*")); len(ents) != 0 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestMigrateDataFallback(t *testing.T) {
	dir := t.TempDir()
	if p := runHello(t, dir, nil, "migrate"); p.code != 0 {
		t.Fatalf("status %d\n%s", p.code, p.output())
	}
	if got := appliedIDs(t, filepath.Join(dir, "data", "schema.json")); len(got) != len(allMigrationIDs(t)) {
		t.Errorf("./data/schema.json applied %v", got)
	}
	checkLine(t, lines(t, filepath.Join(dir, "data", "migrate.log"))[0], `start - \d+`)
}

func TestMigrateFail(t *testing.T) {
	data := t.TempDir()
	p := runHello(t, t.TempDir(), map[string]string{
		"MOORAGE_VOLUME_DATA": data, "MOORAGE_RELEASE": "v4", "HELLO_MIGRATE_FAIL": "1",
	}, "migrate")
	if p.code != 2 || !strings.Contains(p.stderr.String(), "HELLO_MIGRATE_FAIL=1") {
		t.Fatalf("status %d, want 2 and an explanation\n%s", p.code, p.output())
	}
	if _, err := os.Stat(filepath.Join(data, "schema.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed migrate wrote schema.json (err %v)", err)
	}
	log := lines(t, filepath.Join(data, "migrate.log"))
	if len(log) != 2 {
		t.Fatalf("migrate.log: %q, want start and end", log)
	}
	checkLine(t, log[0], `start v4 \d+`)
	checkLine(t, log[1], `end v4 \d+`)
}

func TestMigrateConcurrent(t *testing.T) {
	data := t.TempDir()
	first := start(t, t.TempDir(), map[string]string{
		"MOORAGE_VOLUME_DATA": data, "MOORAGE_RELEASE": "v1", "HELLO_MIGRATE_SLEEP": "10m",
	}, "migrate")
	logPath := filepath.Join(data, "migrate.log")
	waitFor(t, "the first migrate to hold the lock", func() bool {
		if first.exited() {
			t.Fatalf("first migrate exited with %d\n%s", first.code, first.output())
		}
		return contains(t, logPath, "start v1 ")
	})

	second := runHello(t, t.TempDir(), map[string]string{"MOORAGE_VOLUME_DATA": data, "MOORAGE_RELEASE": "v2"}, "migrate")
	if second.code != 1 || !strings.Contains(second.stderr.String(), "another migration is running") {
		t.Errorf("second migrate: status %d, want 1 and an explanation\n%s", second.code, second.output())
	}
	if !strings.Contains(second.stderr.String(), "release v1") {
		t.Errorf("second migrate does not say who holds the lock\n%s", second.output())
	}
	conflicts := lines(t, filepath.Join(data, "migrate-conflicts.log"))
	if len(conflicts) != 1 {
		t.Fatalf("migrate-conflicts.log: %q, want one line", conflicts)
	}
	checkLine(t, conflicts[0], `CONCURRENT v2 \d+`)

	// SIGTERM interrupts the first one while it holds the lock: nothing applied.
	if code := first.stop(t); code != 1 || !strings.Contains(first.stderr.String(), "interrupted") {
		t.Errorf("interrupted migrate: status %d, want 1\n%s", code, first.output())
	}
	if _, err := os.Stat(filepath.Join(data, "schema.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted migrate wrote schema.json (err %v)", err)
	}

	// The lock went with the process: the next one runs.
	third := runHello(t, t.TempDir(), map[string]string{"MOORAGE_VOLUME_DATA": data, "MOORAGE_RELEASE": "v3"}, "migrate")
	if third.code != 0 {
		t.Fatalf("migrate after the conflict: status %d\n%s", third.code, third.output())
	}
	if got, want := appliedIDs(t, filepath.Join(data, "schema.json")), allMigrationIDs(t); len(got) != len(want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	log := lines(t, logPath)
	if len(log) != 4 {
		t.Fatalf("migrate.log: %q", log)
	}
	for i, pat := range []string{`start v1 \d+`, `end v1 \d+`, `start v3 \d+`, `end v3 \d+`} {
		checkLine(t, log[i], pat)
	}
}

func TestSchedulerSingleton(t *testing.T) {
	data := t.TempDir()
	env := func(inst, rel string) map[string]string {
		return map[string]string{"MOORAGE_VOLUME_DATA": data, "MOORAGE_INSTANCE": inst, "MOORAGE_RELEASE": rel}
	}
	logPath := filepath.Join(data, "scheduler.log")
	first := start(t, t.TempDir(), env("sched-1", "v1"), "scheduler")
	waitFor(t, "the first scheduler to start", func() bool {
		if first.exited() {
			t.Fatalf("first scheduler exited with %d\n%s", first.code, first.output())
		}
		return contains(t, logPath, "start sched-1 v1 ")
	})

	second := runHello(t, t.TempDir(), env("sched-2", "v2"), "scheduler")
	if second.code != 1 || !strings.Contains(second.stderr.String(), "another scheduler is running") {
		t.Errorf("second scheduler: status %d, want 1 and an explanation\n%s", second.code, second.output())
	}
	conflicts := lines(t, filepath.Join(data, "scheduler-conflicts.log"))
	if len(conflicts) != 1 {
		t.Fatalf("scheduler-conflicts.log: %q, want one line", conflicts)
	}
	checkLine(t, conflicts[0], `CONFLICT sched-2 v2 \d+`)

	queue := filepath.Join(data, queueDir)
	waitFor(t, "two jobs in the queue", func() bool { return countJobs(t, queue) >= 2 })
	names, _ := jobFiles(queue)
	b, err := os.ReadFile(filepath.Join(queue, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil || j.Seq != 1 || j.Release != "v1" || j.Instance != "sched-1" || j.ID+".json" != names[0] {
		t.Errorf("first job %s = %s (err %v)", names[0], b, err)
	}

	if code := first.stop(t); code != 0 {
		t.Fatalf("first scheduler: status %d after SIGTERM\n%s", code, first.output())
	}
	// With the first one gone, the second can start.
	second = start(t, t.TempDir(), env("sched-2", "v2"), "scheduler")
	waitFor(t, "the second scheduler to start", func() bool {
		if second.exited() {
			t.Fatalf("second scheduler exited with %d\n%s", second.code, second.output())
		}
		return contains(t, logPath, "start sched-2 v2 ")
	})
	if code := second.stop(t); code != 0 {
		t.Fatalf("second scheduler: status %d after SIGTERM\n%s", code, second.output())
	}

	log := lines(t, logPath)
	if len(log) != 4 {
		t.Fatalf("scheduler.log: %q", log)
	}
	for i, pat := range []string{`start sched-1 v1 \d+`, `stop sched-1 v1 \d+`, `start sched-2 v2 \d+`, `stop sched-2 v2 \d+`} {
		checkLine(t, log[i], pat)
	}
}

func TestWorkersConsumeScheduledJobs(t *testing.T) {
	data := t.TempDir()
	env := func(inst string) map[string]string {
		return map[string]string{"MOORAGE_VOLUME_DATA": data, "MOORAGE_INSTANCE": inst, "MOORAGE_RELEASE": "v1"}
	}
	sched := start(t, t.TempDir(), env("sched"), "scheduler")
	workers := []*proc{
		start(t, t.TempDir(), env("worker-1"), "worker"),
		start(t, t.TempDir(), env("worker-2"), "worker"),
	}
	_, url := startWeb(t, appDir(t), env("web"))

	done := filepath.Join(data, doneDir)
	waitFor(t, "workers to finish 4 jobs", func() bool { return countJobs(t, done) >= 4 })
	var counts struct{ Queued, Done int }
	_, body := get(t, url+"/jobs")
	if err := json.Unmarshal([]byte(body), &counts); err != nil || counts.Done < 4 {
		t.Errorf("/jobs = %q (err %v), want done >= 4", body, err)
	}

	if code := sched.stop(t); code != 0 {
		t.Fatalf("scheduler: status %d\n%s", code, sched.output())
	}
	queue := filepath.Join(data, queueDir)
	waitFor(t, "the queue to drain", func() bool { return countJobs(t, queue) == 0 })
	for _, w := range workers {
		if code := w.stop(t); code != 0 {
			t.Errorf("worker: status %d after SIGTERM\n%s", code, w.output())
		}
	}

	// Every job was claimed exactly once.
	names, err := jobFiles(done)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]int{}
	for _, l := range lines(t, filepath.Join(data, "worker.log")) {
		checkLine(t, l, `done worker-[12] v1 \S+ \d+`)
		claims[strings.Fields(l)[3]]++
	}
	if len(claims) != len(names) {
		t.Errorf("worker.log has %d jobs, done/ has %d", len(claims), len(names))
	}
	for _, n := range names {
		id := strings.TrimSuffix(n, ".json")
		if claims[id] != 1 {
			t.Errorf("job %s claimed %d times", id, claims[id])
		}
	}
	for _, w := range workers {
		if !strings.Contains(w.stdout.String(), "worker stopped") {
			t.Errorf("worker did not log its stop\n%s", w.output())
		}
	}
}

func TestAllowedHosts(t *testing.T) {
	p, url := startWeb(t, appDir(t), map[string]string{"HELLO_ALLOWED_HOSTS": "example.com, WWW.example.com", "MOORAGE_RELEASE": "v1"})
	getHost := func(host, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s with Host %s: %v", path, host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, host := range []string{"example.com", "www.example.com:8080", "Example.COM."} {
		if code, body := getHost(host, "/healthz"); code != 200 || body != "ok" {
			t.Errorf("Host %s: %d %q, want 200 ok", host, code, body)
		}
	}
	code, body := getHost(strings.TrimPrefix(url, "http://"), "/healthz")
	if code != 400 || !strings.Contains(body, "HELLO_ALLOWED_HOSTS") {
		t.Errorf("Host 127.0.0.1:PORT: %d %q, want 400 naming HELLO_ALLOWED_HOSTS", code, body)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d\n%s", code, p.output())
	}
}
