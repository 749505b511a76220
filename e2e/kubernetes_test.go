package e2e

import "testing"

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
	{"MonitorRollsBack", func(t *testing.T) { testMonitorRollsBack(t, "kubernetes") }},
	{"RollbackRestoresCodeAndConfig", func(t *testing.T) { testRollbackRestoresCodeAndConfig(t, "kubernetes") }},
	{"FailingReleaseTaskAborts", func(t *testing.T) { testFailingReleaseTaskAborts(t, "kubernetes") }},
	{"CrashingInstanceAborts", func(t *testing.T) { testCrashingInstanceAborts(t, "kubernetes") }},
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
	for _, kt := range kubeTests {
		t.Run(kt.name, func(t *testing.T) {
			slots.acquire(true)
			t.Cleanup(slots.release)
			kt.run(t)
		})
	}
}
