package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// BenchmarkSwarmVsStackDeploy compares, on one real three-node swarm and
// in one run, N updates of examples/hello by moorage's swarm runtime with
// N updates of the same app by plain `docker stack deploy` under the same
// GET and POST load: failed requests (through moorage's proxy; through a
// load balancer with nginx's defaults in front of every node's published
// port, the routing mesh being unavailable here: frontLB), migration runs
// per update, schedulers alive at once, and seconds per update. Not part of the
// normal run (docs/benchmarks.md):
//
//	nice -n 19 go test -run '^$' -bench SwarmVsStackDeploy -benchtime 1x -timeout 60m ./e2e/
//
// MOORAGE_STACK_BENCH_UPDATES sets N (default 5).
func BenchmarkSwarmVsStackDeploy(b *testing.B) {
	swarmtest.Require(b)
	for range b.N {
		for k, v := range swarmVsStackDeploy(b) {
			b.ReportMetric(v, k)
		}
	}
}

// stackBenchResult is what one system did across the updates.
type stackBenchResult struct {
	name       string
	requests   int
	gets       int
	posts      int
	failedGET  int
	failedPOST int
	firstFail  string
	updates    []time.Duration // wall time of each update, build and ship included
	deployOnly []time.Duration // stack: `docker stack deploy` alone (build and ship excluded)
	updateErrs int             // updates whose command failed (exit status)
	migrations []int           // runs of the migration per update (the release's "start" lines in migrate.log)
	migConc    int             // migrations of the updates that found another one running (migrate-conflicts.log)
	schedConfl int             // schedulers of the updates that started while another held the lock (scheduler-conflicts.log)
	schedGens  int             // scheduler generations (starts in scheduler.log)
}

func (r *stackBenchResult) failed() int { return r.failedGET + r.failedPOST }

func (r *stackBenchResult) migrationRuns() (total, lo, hi int) {
	lo = -1
	for _, m := range r.migrations {
		total += m
		if lo < 0 || m < lo {
			lo = m
		}
		hi = max(hi, m)
	}
	return total, max(lo, 0), hi
}

func meanDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// swarmVsStackDeploy is BenchmarkSwarmVsStackDeploy's body: it logs the
// table and returns the metrics.
func swarmVsStackDeploy(t testing.TB) map[string]float64 {
	n := 5
	if v, err := strconv.Atoi(os.Getenv("MOORAGE_STACK_BENCH_UPDATES")); err == nil && v > 0 {
		n = v
	}
	s := startServerArgs(t, "swarm", nil)
	c := s.swarm

	mo := benchMoorage(t, s, n)
	t.Logf("swarm bench: moorage done: %d requests, %d GET and %d POST failed, migrations per update %v (%d concurrent), %d scheduler conflicts, per update %v",
		mo.requests, mo.failedGET, mo.failedPOST, mo.migrations, mo.migConc, mo.schedConfl, roundAll(mo.updates))
	// The stack runs on the same nodes with moorage's app gone.
	s.mustRun("apps", "destroy", "hello", "--yes")
	st := benchStack(t, c, n)

	t.Logf("swarm bench: %d updates of examples/hello on one three-node swarm (cluster slot %d), GET / from 2 clients and POST /echo (1-48 KiB) from 1, continuously", n, c.Slot)
	t.Logf("swarm bench: %-22s %9s %7s %7s %12s %12s %11s %11s %11s", "system", "requests", "failGET", "failPOST", "migr/update", "migr.concur", "sched.confl", "s/update", "max s/upd")
	for _, r := range []*stackBenchResult{mo, st} {
		_, lo, hi := r.migrationRuns()
		t.Logf("swarm bench: %-22s %9d %7d %7d %12s %12d %11d %11.1f %11.1f", r.name, r.requests, r.failedGET, r.failedPOST,
			fmt.Sprintf("%d-%d %v", lo, hi, r.migrations), r.migConc, r.schedConfl, meanDur(r.updates).Seconds(), maxDur(r.updates).Seconds())
	}
	t.Logf("swarm bench: stack: `docker stack deploy` alone (build and ship excluded) %.1f s/update on average %v; %d update commands failed; moorage: %d failed", meanDur(st.deployOnly).Seconds(), roundAll(st.deployOnly), st.updateErrs, mo.updateErrs)
	t.Logf("swarm bench: per update: moorage %v, stack %v", roundAll(mo.updates), roundAll(st.updates))
	for _, r := range []*stackBenchResult{mo, st} {
		if r.firstFail != "" {
			t.Logf("swarm bench: %s first failure: %s", r.name, r.firstFail)
		}
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			if a == 0 {
				return "0/0"
			}
			return "inf"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	mt, _, _ := mo.migrationRuns()
	stt, _, _ := st.migrationRuns()
	t.Logf("swarm bench: moorage ÷ stack: failed requests %d/%d = %s, migration runs %d/%d = %s, scheduler conflicts %d/%d, time per update %.1f/%.1f s = %s",
		mo.failed(), st.failed(), ratio(float64(mo.failed()), float64(st.failed())),
		mt, stt, ratio(float64(mt), float64(stt)), mo.schedConfl, st.schedConfl,
		meanDur(mo.updates).Seconds(), meanDur(st.updates).Seconds(), ratio(meanDur(mo.updates).Seconds(), meanDur(st.updates).Seconds()))

	metrics := map[string]float64{}
	for _, r := range []*stackBenchResult{mo, st} {
		total, _, _ := r.migrationRuns()
		metrics[r.name+"_failed_req"] = float64(r.failed())
		metrics[r.name+"_requests"] = float64(r.requests)
		metrics[r.name+"_migrations/update"] = float64(total) / float64(n)
		metrics[r.name+"_sched_conflicts"] = float64(r.schedConfl)
		metrics[r.name+"_s/update"] = meanDur(r.updates).Seconds()
	}
	metrics["stack_deploy_only_s/update"] = meanDur(st.deployOnly).Seconds()
	metrics["time_moorage/stack"] = meanDur(mo.updates).Seconds() / meanDur(st.updates).Seconds()
	return metrics
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}

// benchMoorage deploys examples/hello with moorage (its moorage.yaml as
// shipped: monitor 5s), then n updates under load.
func benchMoorage(t testing.TB, s *server, n int) *stackBenchResult {
	app := s.hello(t)
	setMessage(t, app, "message 0")
	s.deploy(app, 0)
	s.waitBody("/", "message=message 0")

	r := &stackBenchResult{name: "moorage"}
	ld := startMixedLoader(s.http, "/", 2, 1)
	for i := 1; i <= n; i++ {
		setMessage(t, app, fmt.Sprintf("message %d", i))
		begin := time.Now()
		out, errOut, code := s.run("deploy", app, "--runtime", "swarm")
		r.updates = append(r.updates, time.Since(begin))
		if code != 0 {
			r.updateErrs++
			t.Logf("moorage deploy %d: exit %d\n%s%s", i, code, out, errOut)
		}
		t.Logf("swarm bench: moorage update %d took %s", i, r.updates[i-1].Round(100*time.Millisecond))
	}
	s.waitBody("/", fmt.Sprintf("message=message %d", n))
	r.record(ld.stop())
	// moorage's first deploy is v1: the updates are v2..v(n+1).
	r.readData(s.shared, n)
	return r
}

func (r *stackBenchResult) record(rs []result) {
	r.requests = len(rs)
	m := countMethods(rs)
	r.gets, r.posts = m["GET"], m["POST"]
	for _, x := range rs {
		if !x.failed() {
			continue
		}
		if x.method == "POST" {
			r.failedPOST++
		} else {
			r.failedGET++
		}
		if r.firstFail == "" {
			r.firstFail = fmt.Sprintf("%s %s: status %d err %v body %q", x.start.Format("15:04:05.000"), x.method, x.status, x.err, strings.TrimSpace(x.body))
		}
	}
}

// readData reads the app's logs in its data directory: migration runs,
// concurrent migrations and scheduler conflicts of releases v2..v(n+1),
// the updates (the first deploy, v1, is not counted).
func (r *stackBenchResult) readData(dir string, n int) {
	read := func(name string) []string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return scanLines(string(b))
	}
	runs := map[string]int{}
	for _, l := range read("migrate.log") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "start" {
			runs[f[1]]++
		}
	}
	for i := 2; i <= n+1; i++ {
		r.migrations = append(r.migrations, runs[fmt.Sprintf("v%d", i)])
	}
	updated := func(rel string) bool {
		k, err := strconv.Atoi(strings.TrimPrefix(rel, "v"))
		return err == nil && k >= 2 && k <= n+1
	}
	// "CONCURRENT <release> <nanos>", "CONFLICT <instance> <release> <nanos>"
	for _, l := range read("migrate-conflicts.log") {
		if f := strings.Fields(l); len(f) >= 2 && updated(f[1]) {
			r.migConc++
		}
	}
	for _, l := range read("scheduler-conflicts.log") {
		if f := strings.Fields(l); len(f) >= 3 && updated(f[2]) {
			r.schedConfl++
		}
	}
	for _, l := range read("scheduler.log") {
		if strings.HasPrefix(l, "start ") {
			r.schedGens++
		}
	}
}

// stackPort is the port the stack's web publishes, in host mode, on the
// node of each of its tasks. The routing mesh (mode: ingress) is what a
// user would publish on, but it needs IPVS, which the kernel of the test
// machine lacks (docs/swarm-design.md: connection refused on every node);
// so the stack gets what a user without the mesh puts in front of the
// nodes instead: frontLB, a load balancer with nginx's defaults.
const stackPort = 28080

// stackFile is the stack a careful user writes for examples/hello: web x2
// with a health check, start-first updates that roll back on failure,
// published on every node; the worker; the scheduler with one
// replica (updates stop-first, the default, so that the old one is gone
// before the new one starts); and the migration where most stacks put it,
// in web's command before the server (`migrate && exec web`), since a
// stack has no release phase. The data volume is the same host directory
// on every node, as moorage's is in the tests (a shared filesystem).
func stackFile(image, release, dataDir string) string {
	return fmt.Sprintf(`version: "3.8"
x-app: &app
  image: %[1]s
  working_dir: /app
  user: "65534:65534"
  environment:
    MOORAGE_RELEASE: %[2]s
    MOORAGE_INSTANCE: "{{.Task.Name}}"
    MOORAGE_VOLUME_DATA: /app/data
  volumes:
    - data:/app/data
services:
  web:
    <<: *app
    command: ["sh", "-c", "./hello migrate && exec ./hello web"]
    ports:
      - target: 8080
        published: %[3]d
        protocol: tcp
        mode: host
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 3
      start_period: 2s
    deploy:
      replicas: 2
      update_config:
        order: start-first
        failure_action: rollback
      rollback_config:
        order: start-first
  worker:
    <<: *app
    command: ["./hello", "worker"]
  scheduler:
    <<: *app
    command: ["./hello", "scheduler"]
    deploy:
      replicas: 1
volumes:
  data:
    driver: local
    driver_opts:
      type: none
      o: bind
      device: %[4]s
`, image, release, stackPort, dataDir)
}

// benchStack deploys the same app with `docker stack deploy` on c, then n
// updates under load. Each update is what the user runs: build the binary
// and the image on the manager, ship it to the workers (docker save |
// docker load: there is no registry), deploy the stack and wait for it to
// converge (--detach=false).
func benchStack(t testing.TB, c *swarmtest.Cluster, n int) *stackBenchResult {
	app := helloApp(t)
	prepareDockerApp(t, app)
	data := t.TempDir()
	os.Chmod(data, 0o777)
	stackDir := t.TempDir()
	host := func(nd *swarmtest.Node) string { return "DOCKER_HOST=unix://" + nd.Socket }
	dockerOn := func(nd *swarmtest.Node, stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), host(nd), "DOCKER_CLI_HINTS=false")
		cmd.Dir = app
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("docker %s on %s: %v\n%s%s", strings.Join(args, " "), nd.Name, err, tail(string(out), 20), tail(stderr.String(), 20))
		}
		return out, nil
	}
	mgr := c.Manager()
	t.Cleanup(func() { dockerOn(mgr, nil, "stack", "rm", "hello") })
	// release builds, ships and deploys release v<i+1> with message i, and
	// returns how long `docker stack deploy` itself took.
	release := func(i int) (time.Duration, error) {
		setMessage(t, app, fmt.Sprintf("message %d", i))
		build := exec.Command("go", "build", "-o", "hello", ".")
		build.Dir, build.Env = app, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("go build: %v\n%s", err, out)
		}
		rel := fmt.Sprintf("v%d", i+1)
		image := "hello-stack:" + rel
		if _, err := dockerOn(mgr, nil, "build", "-q", "-t", image, "."); err != nil {
			return 0, err
		}
		tar, err := dockerOn(mgr, nil, "save", image)
		if err != nil {
			return 0, err
		}
		for _, w := range c.Workers() {
			if _, err := dockerOn(w, tar, "load", "-q"); err != nil {
				return 0, err
			}
		}
		f := filepath.Join(stackDir, "stack.yml")
		if err := os.WriteFile(f, []byte(stackFile(image, rel, data)), 0o644); err != nil {
			return 0, err
		}
		begin := time.Now()
		_, err = dockerOn(mgr, nil, "stack", "deploy", "--detach=false", "--resolve-image", "never", "-c", f, "hello")
		return time.Since(begin), err
	}

	if _, err := release(0); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, nd := range c.Nodes {
		nodes = append(nodes, fmt.Sprintf("%s:%d", nd.Addr, stackPort))
	}
	front := startFrontLB(t, nodes)
	waitMesh(t, front, "message=message 0")

	r := &stackBenchResult{name: "stack"}
	ld := startMixedLoader(front, "/", 2, 1)
	for i := 1; i <= n; i++ {
		begin := time.Now()
		d, err := release(i)
		r.updates = append(r.updates, time.Since(begin))
		r.deployOnly = append(r.deployOnly, d)
		if err != nil {
			r.updateErrs++
			t.Logf("stack update %d: %v", i, err)
		}
		t.Logf("swarm bench: stack update %d took %s (docker stack deploy %s)", i, r.updates[i-1].Round(100*time.Millisecond), d.Round(100*time.Millisecond))
	}
	waitMesh(t, front, fmt.Sprintf("message=message %d", n))
	r.record(ld.stop())
	r.readData(data, n)
	if out, err := dockerOn(mgr, nil, "service", "ps", "--no-trunc", "--format", "{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}", "hello_web", "hello_scheduler"); err == nil {
		lines := scanLines(string(out))
		sort.Strings(lines)
		t.Logf("stack tasks of web and scheduler at the end:\n%s", strings.Join(lines, "\n"))
	}
	return r
}

// waitMesh waits until GET / on addr answers 200 with want in the body.
func waitMesh(t testing.TB, addr, want string) {
	t.Helper()
	waitFor(t, 3*time.Minute, "GET / on "+addr+" to contain "+want, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(b.String(), want) {
			return fmt.Errorf("status %d body %q", resp.StatusCode, b.String())
		}
		return nil
	})
}

// frontLB is the stack's load balancer, as nginx with its defaults does
// it for an upstream of every node's published port: round robin; a
// request whose connection is refused (no task on that node) or that
// fails before its answer goes to the next node, but a POST only while it
// has not been sent (proxy_next_upstream error timeout, non_idempotent
// off); a node that failed is skipped for 10 s (max_fails=1
// fail_timeout=10s); when every node is out, they are all tried again;
// 502 when none answers. Request bodies are buffered first, as nginx's
// are. No active health checks: open-source nginx has none.
type frontLB struct {
	targets []string
	tr      *http.Transport
	mu      sync.Mutex
	next    int
	down    map[string]time.Time
}

// startFrontLB listens on a loopback port and returns its address.
func startFrontLB(t testing.TB, targets []string) string {
	lb := &frontLB{targets: targets, down: map[string]time.Time{},
		tr: &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 60 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: lb}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); lb.tr.CloseIdleConnections() })
	return ln.Addr().String()
}

// order returns the targets to try, round robin, live ones first.
func (lb *frontLB) order() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var live, dead []string
	for i := range lb.targets {
		tg := lb.targets[(lb.next+i)%len(lb.targets)]
		if time.Now().Before(lb.down[tg]) {
			dead = append(dead, tg)
		} else {
			live = append(live, tg)
		}
	}
	lb.next++
	if len(live) == 0 {
		return dead
	}
	return live
}

func (lb *frontLB) markDown(tg string) {
	lb.mu.Lock()
	lb.down[tg] = time.Now().Add(10 * time.Second)
	lb.mu.Unlock()
}

func (lb *frontLB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	idempotent := r.Method == http.MethodGet || r.Method == http.MethodHead
	for _, tg := range lb.order() {
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+tg+r.URL.RequestURI(), bytes.NewReader(body))
		out.Header = r.Header.Clone()
		resp, err := lb.tr.RoundTrip(out)
		if err != nil {
			lb.markDown(tg)
			var op *net.OpError
			if idempotent || (errors.As(err, &op) && op.Op == "dial") {
				continue
			}
			http.Error(w, "bad gateway: "+err.Error(), http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "bad gateway: no node answered", http.StatusBadGateway)
}
