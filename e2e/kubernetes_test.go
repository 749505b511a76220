package e2e

import (
	"context"
	"fmt"
	"strings"
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
var kubeTests = []struct {
	name string
	run  func(*testing.T)
}{
	{"ZeroDowntimeDeploys", func(t *testing.T) { testZeroDowntimeDeploys(t, "kubernetes") }},
	{"SIGKILLAtEveryStep", func(t *testing.T) { testSIGKILLAtEveryStep(t, "kubernetes") }},
	{"SIGKILLMidStep", func(t *testing.T) { testSIGKILLMidStep(t, "kubernetes") }},
	{"MonitorRollsBack", func(t *testing.T) { testMonitorRollsBack(t, "kubernetes") }},
	{"RollbackRestoresCodeAndConfig", func(t *testing.T) { testRollbackRestoresCodeAndConfig(t, "kubernetes") }},
	{"FailingReleaseTaskAborts", func(t *testing.T) { testFailingReleaseTaskAborts(t, "kubernetes") }},
	{"CrashingInstanceAborts", func(t *testing.T) { testCrashingInstanceAborts(t, "kubernetes") }},
	{"ScaleUnderLoad", func(t *testing.T) { testScaleUnderLoad(t, "kubernetes") }},
	{"DayTwo", kubeDayTwo},
	{"AllowedHostsApp", func(t *testing.T) { testAllowedHostsApp(t, "kubernetes") }},
}

// TestKubernetes runs kubeTests one after the other, each on a cluster of
// its own: one cluster runs on a machine at a time (kubetest's lock), so
// parallel tests would only wait for it while holding a slot. The lane
// takes its slot before other waiting tests (gate_test.go), as the swarm
// lanes do.
//
// One of them by hand: go test -run 'TestKubernetes/ZeroDowntimeDeploys$' ./e2e/
func TestKubernetes(t *testing.T) {
	t.Parallel()
	// On a machine where the cluster's binaries are cold, make test builds
	// them beside the suite (scripts/kube-build, tens of minutes): wait for
	// them before taking a slot, so that the other tests have every slot
	// meanwhile. (Without what a cluster needs, the first test's
	// kubetest.Start says so, or fails under MOORAGE_REQUIRE_DOCKER=1.)
	if kubetest.Requirements() == nil {
		if _, err := kubetest.Binaries(context.Background(), t.Logf); err != nil {
			t.Fatalf("the Kubernetes cluster's binaries: %v", err)
		}
	}
	for _, kt := range kubeTests {
		t.Run(kt.name, func(t *testing.T) {
			slots.acquire(true)
			t.Cleanup(slots.release)
			kt.run(t)
		})
	}
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
