package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/kubetest"
)

// kubeTests are the end-to-end tests on a real single-node Kubernetes
// cluster (internal/testutil/kubetest: etcd, kube-apiserver, controller
// manager, scheduler and a kubelet running real containers through
// containerd), through the same contract tests as the other runtimes: a
// server started with --kube-config, the example app deployed with
// --runtime kubernetes, its images pushed to the cluster's registry.
//
// Longest first (their times alone, in docs/benchmarks.md): the lane runs
// kubeLaneWidth of them at once, in this order.
var kubeTests = []struct {
	name string
	run  func(*testing.T)
}{
	{"ZeroDowntimeDeploys", func(t *testing.T) { testZeroDowntimeDeploys(t, "kubernetes") }},
	{"SIGKILLAtEveryStep", func(t *testing.T) { testSIGKILLAtEveryStep(t, "kubernetes") }},
	{"AllowedHostsApp", func(t *testing.T) { testAllowedHostsApp(t, "kubernetes") }},
	{"MonitorRollsBackOnFailedCheck", func(t *testing.T) { testMonitorRollsBackOnFailedCheck(t, "kubernetes") }},
	{"RollbackRestoresCodeAndConfig", func(t *testing.T) { testRollbackRestoresCodeAndConfig(t, "kubernetes") }},
	{"ScaleUnderLoad", func(t *testing.T) { testScaleUnderLoad(t, "kubernetes") }},
	{"SIGKILLMidStep", func(t *testing.T) { testSIGKILLMidStep(t, "kubernetes") }},
	{"MonitorRollsBack", func(t *testing.T) { testMonitorRollsBack(t, "kubernetes") }},
	{"CrashingInstanceAborts", func(t *testing.T) { testCrashingInstanceAborts(t, "kubernetes") }},
	{"FailingReleaseTaskAborts", func(t *testing.T) { testFailingReleaseTaskAborts(t, "kubernetes") }},
	{"DayTwo", kubeDayTwo},
}

// kubeLaneWidth is how many of kubeTests run at once on the lane's
// cluster. Most of each test's time is waiting (rollouts, health checks,
// monitor windows, drains): three at once took 462 s against 865 s one
// after the other, on a quiet 2-core machine (docs/benchmarks.md). The
// longest test alone, ZeroDowntimeDeploys, takes 255 s.
const kubeLaneWidth = 3

// laneCluster is the cluster of TestKubernetes, which every kubernetes
// server of its tests runs on (startServerArgs); set before they start.
var laneCluster *kubetest.Cluster

// TestKubernetes runs kubeTests on one cluster, kubeLaneWidth at a time,
// in the order of kubeTests. One cluster runs on a machine at a time
// (kubetest's lock), and it is released when the lane ends, for the
// cluster tests of other packages. Every test has its own server, so its
// own namespaces (PREFIX-APP), registry repositories, volume directory and
// PersistentVolumes, which its server's cleanup removes (kubeCleanup).
// Each test takes its slot (gate_test.go) before other waiting tests, as
// the swarm lanes do.
//
// One of them by hand: go test -run 'TestKubernetes/ZeroDowntimeDeploys$' ./e2e/
func TestKubernetes(t *testing.T) {
	t.Parallel()
	// On a machine where the cluster's binaries are cold, make test builds
	// them beside the suite (scripts/kube-build, tens of minutes): wait for
	// them before taking a slot, so that the other tests have every slot
	// meanwhile. (Without what a cluster needs, kubetest.Start says so,
	// or fails under MOORAGE_REQUIRE_DOCKER=1.)
	if kubetest.Requirements() == nil {
		if _, err := kubetest.Binaries(context.Background(), t.Logf); err != nil {
			t.Fatalf("the Kubernetes cluster's binaries: %v", err)
		}
	}
	laneCluster = kubetest.Start(context.Background(), t)
	lane := newOrderedGate(kubeLaneWidth)
	next := 0
	for _, kt := range kubeTests {
		t.Run(kt.name, func(t *testing.T) {
			turn := next // the tests -run selected, numbered in order
			next++
			t.Parallel()
			lane.enter(turn)
			t.Cleanup(lane.leave)
			slots.acquire(true)
			t.Cleanup(slots.release)
			kt.run(t)
		})
	}
}

// orderedGate lets at most width tests run at once, in the order of their
// turns (0, 1, 2...): a turn enters once all but width-1 of the turns
// before it have left.
type orderedGate struct {
	mu    sync.Mutex
	cond  *sync.Cond
	left  int
	width int
}

func newOrderedGate(width int) *orderedGate {
	g := &orderedGate{width: width}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *orderedGate) enter(turn int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for turn >= g.left+g.width {
		g.cond.Wait()
	}
}

func (g *orderedGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.left++
	g.cond.Broadcast()
}

// The day-two commands on a kubernetes server, as on the other runtimes:
// ps (with the pods' node), run (a Job with the release's environment and
// volumes; its output and exit code), logs (the pods' output, copied),
// maintenance on and off. A one-off given input is refused, saying what
// to use instead. Scaling is TestKubernetes/ScaleUnderLoad.
func kubeDayTwo(t *testing.T) {
	s := startServerRT(t, "kubernetes")
	app := s.hello(t, append(fastSpec, "release:", "env:\n  PLAIN: from-spec\nrelease:")...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")

	webs := 0
	for _, in := range s.ps("hello").Instances {
		if in.Service == "web" && in.State == "running" {
			webs++
			if in.Node != kubetest.NodeName {
				t.Errorf("ps: %s on node %q, want %q", in.ID, in.Node, kubetest.NodeName)
			}
		}
	}
	if webs != 2 {
		t.Fatalf("ps: %d web instances running, want 2", webs)
	}

	out, errOut, code := s.run("run", "-a", "hello", "--", "sh", "-c", "echo plain=$PLAIN release=$MOORAGE_RELEASE; echo oops >&2; ls $MOORAGE_VOLUME_DATA/schema.json; exit 7")
	if code != 7 {
		t.Fatalf("run: exit %d, want 7\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "plain=from-spec release=v1") || !strings.Contains(out, "schema.json") || !strings.Contains(errOut, "oops") {
		t.Fatalf("run: stdout %q stderr %q", out, errOut)
	}
	if out, errOut, code = s.run("run", "-a", "hello", "--", "./hello", "migrate"); code != 0 || !strings.Contains(out+errOut, "nothing to apply") {
		t.Fatalf("run migrate: %d %s%s", code, out, errOut)
	}
	out, errOut, code = s.runStdin("some input\n", "run", "-a", "hello", "--", "cat")
	if code == 0 || !strings.Contains(out+errOut, "not supported") {
		t.Fatalf("a one-off with input: exit %d, want a refusal that says it is not supported\n%s%s", code, out, errOut)
	}

	waitFor(t, 30*time.Second, "the web pods' output in moorage logs", func() error {
		if out := s.mustRun("logs", "-a", "hello", "-n", "0", "web"); !strings.Contains(out, "hello-web-v1-1 | ") {
			return fmt.Errorf("logs:\n%s", out)
		}
		return nil
	})

	s.mustRun("maintenance", "on", "-a", "hello", "--message", "Back at 10:00")
	if code, body, _ := s.get("/"); code != 503 || !strings.Contains(body, "Back at 10:00") {
		t.Fatalf("maintenance: %d %q", code, body)
	}
	s.mustRun("maintenance", "off", "-a", "hello")
	s.waitBody("/", "release=v1")
}
