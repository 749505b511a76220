package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var bodyRE = regexp.MustCompile(`^release=(v\d+) message=(.*) instance=(\S+)$`)

// 10 consecutive deploys of examples/hello, each with a changed
// message.txt, under continuous requests: no request fails, and every
// response comes from the release active before or after the deploy in
// flight. The singleton scheduler never has two instances alive, across the
// deploys and a rollback.
func TestZeroDowntimeDeploys(t *testing.T) { runtimes(t, testZeroDowntimeDeploys) }

func testZeroDowntimeDeploys(t *testing.T, rt string) {
	metrics := freePort(t)
	s := startServerArgs(t, rt, []string{"--metrics", metrics})
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "message 0")
	s.deploy(app, 0)
	s.waitBody("/", "message=message 0")

	// GETs, which the proxy may retry or hold, and POSTs with bodies, which
	// it never sends twice: "0 failed" cannot be retries hiding failures.
	retriesBefore := metric(t, metrics, "moorage_proxy_retries_total", "app=hello")
	ld := startMixedLoader(s.http, "/", 2, 1)
	type window struct{ start, end time.Time }
	windows := []window{{time.Time{}, time.Now()}} // deploy 0 is done
	n := 10
	if rt == "swarm" {
		// A swarm deploy takes ~45 s here (a three-node cluster on two
		// shared cores): five keep the suite's time in check.
		n = 5
	}
	var sched *singletonWatch
	if rt == "kubernetes" {
		// The cluster's own view of the scheduler: a new pod only once
		// the old one is gone, not merely terminating.
		sched = watchSingleton(t, s, "hello", "scheduler")
	}
	for i := 1; i <= n; i++ {
		setMessage(t, app, fmt.Sprintf("message %d", i))
		w := window{start: time.Now()}
		s.deploy(app, 0)
		w.end = time.Now()
		windows = append(windows, w)
	}
	s.waitBody("/", fmt.Sprintf("message=message %d", n))
	results := ld.stop()
	if sched != nil {
		pods, overlaps := sched.result()
		if len(overlaps) > 0 {
			t.Fatalf("the scheduler's pods overlapped %d times: %s", len(overlaps), strings.Join(overlaps, "; "))
		}
		if pods < n {
			t.Fatalf("the watch saw %d scheduler pods in %d deploys", pods, n)
		}
		t.Logf("%d scheduler pods over %d deploys, each created after the last was gone", pods, n)
	}

	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed during %d deploys; first: %s", len(f), len(results), n, f[0])
	}
	methods := countMethods(results)
	if methods["POST"] == 0 || methods["GET"] == 0 {
		t.Fatalf("requests by method: %v", methods)
	}
	// Every response carries a message deployed before its request ended,
	// and not one a deploy that had finished before its request began had
	// replaced.
	for _, r := range results {
		if r.method != "GET" {
			continue
		}
		m := bodyRE.FindStringSubmatch(strings.TrimSpace(r.body))
		if m == nil {
			t.Fatalf("unexpected body %q", r.body)
		}
		var k int
		fmt.Sscanf(m[2], "message %d", &k)
		lo, hi := 0, 0
		for i, w := range windows {
			if w.end.Before(r.start) {
				lo = i
			}
			if i == 0 || w.start.Before(r.end) {
				hi = i
			}
		}
		if k < lo || k > hi {
			t.Fatalf("response %q to a request at %s..%s: allowed messages %d..%d", r.body, r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"), lo, hi)
		}
	}
	retries := metric(t, metrics, "moorage_proxy_retries_total", "app=hello") - retriesBefore
	t.Logf("%d requests during %d deploys (%d GET, %d POST), 0 failed; the proxy retried %.0f on another instance",
		len(results), n, methods["GET"], methods["POST"], retries)

	// The migration ran once per deploy, never two at once.
	checkMigrations(t, s, "hello", n+1)

	// A rollback, then the singleton check over everything.
	out := s.mustRun("rollback", "-a", "hello")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("rollback: %s", out)
	}
	s.waitBody("/", fmt.Sprintf("message=message %d", n-1))
	checkSingleton(t, s, "hello")
}

// checkMigrations checks migrate.log: one start/end pair per deploy, none
// overlapping, no conflict recorded.
func checkMigrations(t *testing.T, s *server, app string, want int) {
	t.Helper()
	if c := volumeFile(s, app, "migrate-conflicts.log"); c != "" {
		t.Fatalf("two migrations ran at once:\n%s", c)
	}
	lines := scanLines(volumeFile(s, app, "migrate.log"))
	var pairs [][2]int64
	seen := map[string]int{}
	for i := 0; i+1 < len(lines); i += 2 {
		a, b := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(a) < 3 || len(b) < 3 || a[0] != "start" || b[0] != "end" || a[1] != b[1] {
			t.Fatalf("migrate.log is not start/end pairs at line %d:\n%s", i+1, strings.Join(lines, "\n"))
		}
		seen[a[1]]++
		s, _ := strconv.ParseInt(a[2], 10, 64)
		e, _ := strconv.ParseInt(b[2], 10, 64)
		pairs = append(pairs, [2]int64{s, e})
	}
	if len(pairs) != want || len(lines)%2 != 0 {
		t.Fatalf("%d migration runs, want %d:\n%s", len(pairs), want, strings.Join(lines, "\n"))
	}
	for rel, c := range seen {
		if c != 1 {
			t.Fatalf("release %s ran its migration %d times", rel, c)
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	for i := 1; i < len(pairs); i++ {
		if pairs[i][0] < pairs[i-1][1] {
			t.Fatalf("migrations overlapped: %v and %v", pairs[i-1], pairs[i])
		}
	}
}

// checkSingleton checks scheduler.log: every start follows the previous
// scheduler's stop, and no scheduler ever found the lock taken.
func checkSingleton(t *testing.T, s *server, app string) {
	t.Helper()
	checkSingletonStarts(t, s, app, 2)
}

// checkSingletonStarts is checkSingleton with at least min starts logged.
func checkSingletonStarts(t testing.TB, s *server, app string, min int) {
	t.Helper()
	if c := volumeFile(s, app, "scheduler-conflicts.log"); c != "" {
		t.Fatalf("two schedulers were alive at once:\n%s", c)
	}
	lines := scanLines(volumeFile(s, app, "scheduler.log"))
	alive := ""
	starts := 0
	for _, l := range lines {
		f := strings.Fields(l)
		switch f[0] {
		case "start":
			if alive != "" {
				t.Fatalf("%s started while %s was alive:\n%s", f[1], alive, strings.Join(lines, "\n"))
			}
			alive = f[1]
			starts++
		case "stop":
			if alive != f[1] {
				t.Fatalf("%s stopped but %q was the live one:\n%s", f[1], alive, strings.Join(lines, "\n"))
			}
			alive = ""
		}
	}
	if starts < min {
		t.Fatalf("only %d scheduler starts logged:\n%s", starts, strings.Join(lines, "\n"))
	}
	t.Logf("%d scheduler generations, never two alive", starts)
}

// A deploy whose new web instances never get healthy fails with a clear
// message; the old release serves throughout and its instances are never
// touched.
func TestUnhealthyDeployFails(t *testing.T) { runtimes(t, testUnhealthyDeployFails) }

func testUnhealthyDeployFails(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "healthy one")
	s.deploy(app, 0)
	s.waitBody("/", "healthy one")
	before := s.ps("hello")

	editSpec(t, app, "health: {path: /healthz, interval: 1s}", "health: {path: /healthz, interval: 1s, start_period: 3s}",
		"release:", "env:\n  HELLO_UNHEALTHY: \"1\"\nrelease:")
	setMessage(t, app, "never healthy")
	ld := startLoader(s.http, "/", 2)
	out := s.deploy(app, 1)
	results := ld.stop()

	for _, want := range []string{"did not become ready", "hello-web-v2-", "GET /healthz", "status 503", "within 3s (health.start_period", "last lines of hello-web-v2-", "v1 keeps serving"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed while v2 was failing; first: %s", len(f), len(results), f[0])
	}
	for _, r := range results {
		if !strings.Contains(r.body, "healthy one") {
			t.Fatalf("a request reached the failing release: %q", r.body)
		}
	}
	after := s.ps("hello")
	if after.Active != "v1" {
		t.Fatalf("active is %s, want v1", after.Active)
	}
	assertSameInstances(t, before, after)
	rels := s.mustRun("releases", "-a", "hello")
	if !regexp.MustCompile(`v2\s+#\d+\s+failed`).MatchString(rels) {
		t.Fatalf("v2 not marked failed:\n%s", rels)
	}
}

// assertSameInstances checks that the same instances run with the same
// PIDs and no restarts: nothing touched them.
func assertSameInstances(t *testing.T, before, after psStatus) {
	t.Helper()
	pids := map[string]int{}
	for _, in := range before.Instances {
		pids[in.ID] = in.PID
	}
	if len(after.Instances) != len(before.Instances) {
		t.Fatalf("instances changed: before %+v\nafter %+v", before.Instances, after.Instances)
	}
	for _, in := range after.Instances {
		if pid, ok := pids[in.ID]; !ok || pid != in.PID || in.Restarts != 0 || in.State != "running" {
			t.Fatalf("instance %s was touched: pid %d→%d, restarts %d, state %s", in.ID, pid, in.PID, in.Restarts, in.State)
		}
	}
}

// A failing release task aborts the deploy before any instance starts.
func TestFailingReleaseTaskAborts(t *testing.T) { runtimes(t, testFailingReleaseTaskAborts) }

func testFailingReleaseTaskAborts(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	before := s.ps("hello")

	editSpec(t, app, "release:", "env:\n  HELLO_MIGRATE_FAIL: \"1\"\nrelease:")
	out := s.deploy(app, 1)
	if !strings.Contains(out, "release task 1 `./hello migrate` exited with status 2") {
		t.Fatalf("deploy output does not name the failing task:\n%s", out)
	}
	var ds []struct {
		Status string `json:"status"`
		Steps  []struct {
			Name string `json:"name"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
		t.Fatal(err)
	}
	if ds[0].Status != "failed" {
		t.Fatalf("latest deploy status %s", ds[0].Status)
	}
	for _, st := range ds[0].Steps {
		if st.Name == "start" || st.Name == "cutover" || st.Name == "singleton" {
			t.Fatalf("step %s ran after the release task failed: %+v", st.Name, ds[0].Steps)
		}
	}
	assertSameInstances(t, before, s.ps("hello"))
}

// A second deploy while one runs is refused with who and since, or waits
// with --wait; release tasks of the two never overlap.
func TestConcurrentDeploysAreSerialized(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	s.deploy(app, 0)
	editSpec(t, app, "release:", "env:\n  HELLO_MIGRATE_SLEEP: 2s\nrelease:")

	done := make(chan string, 1)
	go func() {
		out, errOut, code := s.run("deploy", app)
		done <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	// Wait until the first deploy holds the lock.
	waitFor(t, 60*time.Second, "the first deploy to take the lock", func() error {
		if st := s.ps("hello"); st.Active == "" {
			return fmt.Errorf("no active release")
		}
		out := s.mustRun("ps", "-a", "hello")
		if !strings.Contains(out, "locked:") {
			return fmt.Errorf("not locked yet")
		}
		return nil
	})
	out, errOut, code := s.run("deploy", app)
	if code == 0 {
		t.Fatalf("a second deploy was not refused:\n%s", out)
	}
	msg := out + errOut
	for _, want := range []string{"hello is locked", "deploy", "since", "ago", "pid", "--wait"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal (on stderr) lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "#0") {
		t.Errorf("the refused deploy got a number:\n%s", msg)
	}
	// --wait waits for the first one, then deploys.
	out, errOut, code = s.run("deploy", app, "--wait")
	if code != 0 {
		t.Fatalf("deploy --wait: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "waiting: hello is locked") {
		t.Errorf("deploy --wait did not say it waited:\n%s", out)
	}
	if first := <-done; !strings.HasPrefix(first, "exit 0") {
		t.Fatalf("first deploy: %s", first)
	}
	checkMigrations(t, s, "hello", 3)
}

// rollback brings back the previous release's code and config in one step.
func TestRollbackRestoresCodeAndConfig(t *testing.T) { runtimes(t, testRollbackRestoresCodeAndConfig) }

func testRollbackRestoresCodeAndConfig(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, append(fastSpec, "release:", "env:\n  GREETING: first\nrelease:")...)
	setMessage(t, app, "code one")
	s.deploy(app, 0)
	editSpec(t, app, "GREETING: first", "GREETING: second")
	setMessage(t, app, "code two")
	s.deploy(app, 0)
	s.waitBody("/", "code two")
	s.waitBody("/env/GREETING", "second")

	// A release that does not exist: refused, with the ones that do.
	out, errOut, code := s.run("rollback", "-a", "hello", "--to", "v9")
	if code != 1 || !strings.Contains(errOut, "rollback to v9: no such release; releases to roll back to: v1") {
		t.Fatalf("rollback --to v9: exit %d\n%s%s", code, out, errOut)
	}

	out = s.mustRun("rollback", "-a", "hello")
	if !strings.Contains(out, "rollback to v1") || !strings.Contains(out, "succeeded") {
		t.Fatalf("rollback output:\n%s", out)
	}
	s.waitBody("/", "code one")
	if _, body, _ := s.get("/env/GREETING"); body != "first" {
		t.Fatalf("config after rollback: GREETING=%q, want first", body)
	}
	rels := s.mustRun("releases", "-a", "hello")
	if !regexp.MustCompile(`\*v3\s+#3\s+active\s+.*rollback to v1`).MatchString(rels) {
		t.Fatalf("releases after rollback:\n%s", rels)
	}
	// Rolling back runs no release task.
	checkMigrations(t, s, "hello", 2)
	// And --to picks any kept release.
	s.mustRun("rollback", "-a", "hello", "--to", "v2")
	s.waitBody("/", "code two")
}

// A malformed spec is refused before anything is uploaded, with
// file:line:column.
func TestMalformedSpec(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, "    replicas: 2", "    replicas: two")
	out, errOut, code := s.run("deploy", app)
	if code != 2 {
		t.Fatalf("exit %d, want 2:\n%s%s", code, out, errOut)
	}
	if !regexp.MustCompile(`moorage\.yaml:\d+:\d+: services\.web\.replicas`).MatchString(errOut) {
		t.Fatalf("error lacks file:line:col:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "releases", "hello")); err == nil {
		t.Fatalf("a release directory was created for a malformed spec")
	}
}
