package e2e

import (
	"context"
	"testing"

	"github.com/moorage/moorage/internal/testutil/kubetest"
)

// startServerKube starts a server with the kubernetes runtime on a real
// single-node cluster (kubetest) that this test starts: images built by
// this machine's Docker go through the cluster's registry on loopback,
// and volumes are hostPath volumes under a directory of the test.
func startServerKube(t testing.TB, args []string, env ...string) *server {
	t.Helper()
	requireDocker(t)
	c := kubetest.Start(context.Background(), t)
	if c.Registry == "" {
		t.Fatal("the cluster has no registry: install docker-registry (scripts/test-deps)")
	}
	vols := t.TempDir()
	args = append(append([]string(nil), args...),
		"--kube-config", c.Kubeconfig, "--kube-registry", c.Registry, "--kube-volume-dir", vols)
	s := startServerOn(t, "kubernetes", nil, args, env...)
	s.shared = vols
	return s
}

// The deploy contract on a real cluster, through the same test as the
// other runtimes: deploys under load with no failed request, the migration
// once per deploy (a Job) and never two at once, a rollback, and the
// scheduler never alive twice.
func TestKubernetesZeroDowntimeDeploys(t *testing.T) {
	testZeroDowntimeDeploys(t, "kubernetes")
}

// A release task (a Job) that fails aborts with nothing running changed.
func TestKubernetesFailingReleaseTaskAborts(t *testing.T) {
	testFailingReleaseTaskAborts(t, "kubernetes")
}

// A new release that crashes in the monitor window (its pod's container
// restarts) is rolled back, with its config.
func TestKubernetesMonitorRollsBack(t *testing.T) {
	testMonitorRollsBack(t, "kubernetes")
}

// The server SIGKILLed at representative journal steps of a deploy (as on
// swarm) converges on restart from the cluster's labels and the journal.
func TestKubernetesSIGKILLAtEveryStep(t *testing.T) {
	testSIGKILLAtEveryStep(t, "kubernetes")
}
