package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/spec"
)

// A worker node that runs one of the web instances is lost (a power cut:
// its dockerd and every task on it die at once) while the app serves a
// load of GETs and POSTs through moorage's proxy. The scheduler runs on
// the manager, away from the lost node.
//
// What the proxy does about it (internal/proxy): the lost instance's
// connections die with it; a request whose connection breaks before an
// answer is sent again on another instance when it is idempotent (a GET,
// or a body it buffered with an Idempotency-Key), and a new connection to
// the lost instance fails to dial, which takes it out of rotation at once
// (passive check) and sends the request to another instance, whatever its
// method, since nothing reached the app. Only a request that was already
// sent to the lost instance and may not be sent twice (a POST) fails: a
// 502. The active health check (the spec's interval, timeout and retries:
// examples/hello has interval 1s, and the defaults timeout 2s and retries
// 3) takes the instance out by itself within
//
//	bound = interval + retries × max(interval, timeout) = 1s + 3 × 2s = 7s
//
// of the loss (the first check comes within one interval, and each failed
// check lasts at most its timeout, the next one starting at once). That
// bounds the failures in time: each starts before the loss + bound. And in
// number: a request can fail only on a connection the proxy had opened to
// the lost instance before its processes died (a new one fails to dial,
// which is retried), each such connection fails at most one request, and
// the proxy never has more connections to an instance than requests in
// flight, which the load's clients (one request at a time each) bound: so
// at most getters + posters failures, all of them POSTs. In the runs, the
// first failed dial took the instance out within 50–260ms, long before the
// active check would have, and 0–2 POSTs failed.
//
// Swarm starts the lost instance again on the other worker, and the
// proxy follows it there. Then, with the node still down, a deploy
// succeeds under the same load with no failed request (the lost instance
// is one of the replaced release's, kept warm like the others; its old
// task on the lost node is Swarm's to end when the node is back) and the
// scheduler stays single; once the node is back, a further deploy succeeds
// and the scheduler is still single.
func swarmWebNodeLossUnderLoad(t *testing.T) {
	testWebNodeLoss(t, false)
}

// The same loss as swarmWebNodeLossUnderLoad, on a machine that goes
// silent: the node's network cable is cut first (swarmtest Disconnect),
// then its processes die, so that nothing it had open is closed or
// refused; packets to it are dropped, as after a real power cut. A request
// the proxy had already sent there gets no answer at all and fails, GET or
// not, when the client gives up (the load's 30s; the proxy's own response
// header timeout is 60s); a new connection to it fails after the proxy's
// dial timeout (3s), takes it out of rotation and is sent elsewhere. The
// bounds are the same: every failure started before the loss + the
// health bound, and at most one per connection the load's clients could
// have had open to the lost instance.
//
// A measurement, not part of the normal run (docs/benchmarks.md):
//
//	go test -run '^$' -bench SwarmWebNodeCutUnderLoad -benchtime 1x -timeout 30m ./e2e/
//
// Once in the suite's run of 2026-12-07 (04:04 UTC, load average ~19),
// the further deploy after the node came back failed its gate, safely
// undone: one of the three new web tasks, on the node that had been cut
// off, refused connections on its published port for 30 s while the
// other two answered at once. Until that is understood (Docker's port
// publishing on a node whose network came back?), the scenario is
// measured by hand, not asserted in CI; the power cut without the cable
// cut (swarmWebNodeLossUnderLoad) is.
func BenchmarkSwarmWebNodeCutUnderLoad(b *testing.B) {
	for range b.N {
		testWebNodeLoss(b, true)
	}
}

// testWebNodeLoss is swarmWebNodeLossUnderLoad, with cut the node's
// cable cut before its processes die (BenchmarkSwarmWebNodeCutUnderLoad).
func testWebNodeLoss(t testing.TB, cut bool) {
	metrics := freePort(t)
	s := startServerArgs(t, "swarm", []string{"--metrics", metrics})
	const webReplicas = 3
	app := s.hello(t, append(slices.Clone(fastSpec),
		"    singleton: true", "    singleton: true\n    placement: {constraints: [node.role==manager]}",
		"    replicas: 2", fmt.Sprintf("    replicas: %d\n    min_ready: 1s\n    placement: {constraints: [node.role==worker]}", webReplicas))...)
	setMessage(t, app, "v1")
	s.deploy(app, 0)
	s.waitBody("/", "message=v1")

	// The lost node: a worker that runs a web instance, while the other
	// worker runs at least one as well (Swarm spreads the web instances,
	// each its own service, over the two workers by their task counts).
	webs := map[string][]string{} // node → web instances
	for _, in := range s.ps("hello").Instances {
		switch {
		case in.Service == "web" && in.State == "running":
			webs[in.Node] = append(webs[in.Node], in.ID)
		case in.Service == "scheduler" && in.Node != s.swarm.Manager().Name:
			t.Fatalf("the scheduler runs on %q, against its placement", in.Node)
		}
	}
	w1, w2 := s.swarm.Workers()[0], s.swarm.Workers()[1]
	if len(webs[w1.Name]) == 0 || len(webs[w2.Name]) == 0 {
		t.Fatalf("the %d web instances are not on both workers: %v", webReplicas, webs)
	}
	dead, other := w1, w2
	if len(webs[w2.Name]) < len(webs[w1.Name]) {
		dead, other = w2, w1
	}
	lost := webs[dead.Name]
	t.Logf("web instances: %v; the lost node %s runs %v", webs, dead.Name, lost)

	const getters, posters = 4, 2
	retriesBefore := metric(t, metrics, "moorage_proxy_retries_total", "app=hello")
	l := startMixedLoader(s.http, "/", getters, posters)
	defer l.stop()
	// The lost instances serve their share before the loss.
	waitFor(t, time.Minute, "the load to reach every web instance", func() error {
		for _, id := range append(slices.Clone(lost), webs[other.Name]...) {
			if l.answeredBy(id, time.Time{}) == 0 {
				return fmt.Errorf("no answer from %s yet (%d requests)", id, l.count())
			}
		}
		if n := l.count(); n < 200 {
			return fmt.Errorf("%d requests", n)
		}
		return nil
	})

	health := spec.Health{Interval: time.Second, Timeout: spec.DefaultHealthTimeout, Retries: spec.DefaultHealthRetries} // examples/hello's web
	bound := health.Interval + time.Duration(health.Retries)*max(health.Interval, health.Timeout)
	what := "web node loss under load"
	killAt := time.Now()
	if cut {
		what = "web node cut off and lost under load"
		if err := dead.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Since(killAt)
	gone := time.Now() // every process of the node has exited
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	down, err := s.swarm.WaitNodeState(ctx, dead, swarm.NodeStateDown)
	if err != nil {
		t.Fatal(err)
	}
	down += killed
	// Swarm starts the lost instances again on the other worker, and the
	// proxy follows them there (the runtime reports the move as a
	// restart, and the engine routes the new address): they serve again,
	// under the same load.
	waitFor(t, 3*time.Minute, "the lost instances to serve again from "+other.Name, func() error {
		for _, id := range lost {
			if l.answeredBy(id, gone) == 0 {
				return fmt.Errorf("no answer from %s since the loss", id)
			}
		}
		return nil
	})
	back := time.Since(killAt)
	// The load goes on well past the bound, and at least 200 requests
	// after it.
	var after int
	waitFor(t, 2*time.Minute, "the load to go on past the bound", func() error {
		if time.Since(killAt) < bound+3*time.Second {
			after = l.count()
			return fmt.Errorf("%s since the loss", time.Since(killAt).Round(time.Millisecond))
		}
		if n := l.count(); n < after+200 {
			return fmt.Errorf("%d requests since the bound", n-after)
		}
		return nil
	})
	// Every request that started before the bound has ended (stop would
	// cancel one still waiting on the lost node, uncounted).
	waitFor(t, 2*time.Minute, "the requests started before the bound to end", func() error {
		if at := l.inFlightSince(); !at.IsZero() && at.Before(gone.Add(bound)) {
			return fmt.Errorf("a request started %s after the loss is in flight", at.Sub(killAt).Round(time.Millisecond))
		}
		return nil
	})
	rs := l.stop()
	retries := metric(t, metrics, "moorage_proxy_retries_total", "app=hello") - retriesBefore
	out := s.proxyLogged(`msg="target unhealthy"`, lost, killAt)
	moved := s.proxyLogged(`msg="target moved"`, lost, killAt)

	var failed []result
	var slowest time.Duration
	for _, r := range rs {
		if r.end.After(killAt) && r.start.Before(killAt.Add(bound)) {
			slowest = max(slowest, r.end.Sub(r.start))
		}
		if r.failed() {
			failed = append(failed, r)
		}
	}
	var window time.Duration
	if len(failed) > 0 {
		first, last := failed[0].start, failed[0].end
		for _, r := range failed {
			if r.start.Before(first) {
				first = r.start
			}
			if r.end.After(last) {
				last = r.end
			}
		}
		window = last.Sub(first)
	}
	n := countMethods(rs)
	fm := countMethods(failed)
	t.Logf("figure: %s: %d requests (%d GET, %d POST), %d failed (%d GET, %d POST) over %s; bound %s (interval %s, timeout %s, retries %d); node down in swarm after %s; lost instance out of the proxy's rotation after %s; proxy retries %.0f; slowest request across the loss %s; the proxy routes to the lost instance's new task after %s, and it serves again from %s after %s",
		what, len(rs), n["GET"], n["POST"], len(failed), fm["GET"], fm["POST"], window.Round(time.Millisecond),
		bound, health.Interval, health.Timeout, health.Retries, down.Round(time.Millisecond), out, retries, slowest.Round(time.Millisecond), moved, other.Name, back.Round(time.Millisecond))
	for _, f := range failures(failed) {
		t.Logf("failed: %s", f)
	}
	for _, r := range failed {
		switch {
		case r.method != "POST" && !cut:
			t.Errorf("a %s failed (the proxy sends an idempotent request again on another instance): %s", r.method, failures([]result{r}))
		case r.end.Before(killAt):
			t.Errorf("a request failed before the loss: %s", failures([]result{r}))
		case !r.start.Before(killAt.Add(killed + bound)):
			t.Errorf("a request failed that started %s after the loss, past the bound %s: %s", r.start.Sub(killAt).Round(time.Millisecond), bound, failures([]result{r}))
		}
	}
	if len(failed) > getters+posters {
		t.Errorf("%d requests failed, more than the %d connections the load's clients could have had open to the lost instance", len(failed), getters+posters)
	}
	if t.Failed() {
		t.FailNow()
	}

	// A deploy while the node is down goes through under load, and the
	// scheduler (on the manager) is replaced once.
	l = startMixedLoader(s.http, "/", getters, posters)
	defer l.stop()
	setMessage(t, app, "v2")
	for _, in := range s.ps("hello").Instances {
		if slices.Contains(lost, in.ID) {
			t.Logf("before the deploy with %s down: %s %s on %s (node down %v), routed %v, health %q", dead.Name, in.ID, in.State, in.Node, in.Down, in.Routed, in.Health)
		}
	}
	begin := time.Now()
	deployed := s.deploy(app, 0)
	took := time.Since(begin)
	for _, line := range scanLines(deployed) {
		for _, id := range lost {
			if strings.Contains(line, id) {
				t.Logf("deploy with %s down: %s", dead.Name, line)
			}
		}
	}
	s.waitBody("/", "message=v2")
	rs = l.stop()
	t.Logf("figure: deploy with %s down: took %s; %d requests, %d failed", dead.Name, took.Round(time.Millisecond), len(rs), len(failures(rs)))
	for _, f := range failures(rs) {
		t.Errorf("failed during the deploy with %s down: %s", dead.Name, f)
	}
	st := s.ps("hello")
	s.checkOneScheduler(st, "v2")
	checkSingletonStarts(t, s, "hello", 2)
	for _, in := range st.serving() {
		if in.Service == "web" && (in.Release != "v2" || in.Node == dead.Name || in.State != "running") {
			t.Errorf("web after the deploy with %s down: %+v", dead.Name, in)
		}
	}

	// The node comes back: its old tasks end, and a further deploy goes
	// through with the scheduler still single.
	if cut {
		if err := dead.Reconnect(); err != nil {
			t.Fatal(err)
		}
	}
	s.restartNode(ctx, dead)
	waitFor(t, 2*time.Minute, "no instance on a down node", func() error {
		for _, in := range s.ps("hello").Instances {
			if in.Down {
				return fmt.Errorf("%s on %s (node down)", in.ID, in.Node)
			}
		}
		return nil
	})
	// Its old tasks end (failed: their containers died with the node);
	// for the lost instances, which run elsewhere since, that is no crash.
	waitFor(t, 2*time.Minute, "the old tasks on "+dead.Name+" to end", func() error {
		res, err := s.swarm.Client().TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("node", dead.ID)})
		if err != nil {
			return err
		}
		for _, tk := range res.Items {
			switch tk.Status.State {
			case swarm.TaskStateRunning, swarm.TaskStateStarting, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateAssigned, swarm.TaskStateAccepted:
				return fmt.Errorf("task %s still %s", tk.ID, tk.Status.State)
			}
		}
		return nil
	})
	for _, in := range s.ps("hello").Instances {
		if slices.Contains(lost, in.ID) && in.Restarts != 0 {
			t.Errorf("%s: %d restarts counted after %s came back, want 0 (it was moved, not crashed)", in.ID, in.Restarts, dead.Name)
		}
	}
	setMessage(t, app, "v3")
	s.deploy(app, 0)
	s.waitBody("/", "message=v3")
	s.checkOneScheduler(s.ps("hello"), "v3")
	checkSingletonStarts(t, s, "hello", 3)
}

// answeredBy counts the GET answers that instance id gave to requests
// started after since.
func (l *loader) answeredBy(id string, since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.results {
		if r.method == "GET" && r.status == 200 && r.start.After(since) && strings.Contains(r.body, "instance="+id+"\n") {
			n++
		}
	}
	return n
}

// checkOneScheduler fails unless exactly one scheduler instance runs, of
// release rel.
func (s *server) checkOneScheduler(st psStatus, rel string) {
	s.t.Helper()
	var live []string
	for _, in := range st.Instances {
		if in.Service == "scheduler" && in.State != "exited" {
			live = append(live, fmt.Sprintf("%s (%s, %s on %s)", in.ID, in.Release, in.State, in.Node))
		}
	}
	if len(live) != 1 || !strings.Contains(live[0], "("+rel+",") {
		s.t.Fatalf("schedulers: %v, want one of %s", live, rel)
	}
}

// proxyLogged says how long after since the server first logged msg (the
// proxy's "target unhealthy", "target moved") for one of the targets ids,
// or "not logged".
func (s *server) proxyLogged(msg string, ids []string, since time.Time) string {
	for _, line := range strings.Split(s.logs(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		for _, id := range ids {
			if !strings.Contains(line, "target="+id+" ") {
				continue
			}
			f, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			at, err := time.Parse(time.RFC3339Nano, f)
			if err == nil && at.After(since) {
				return at.Sub(since).Round(time.Millisecond).String()
			}
		}
	}
	return "not logged"
}
