package e2e

import "testing"

// The deploy contract on a real three-node swarm (a manager and two
// workers, each a dockerd in its own network namespace), through the same
// tests as the other runtimes: a server started with --swarm-host and
// --swarm-node, the example app deployed with --runtime swarm.

// Deploys under load (five here; ten were measured by hand) with no failed
// request, the migration once per deploy and never two at once, a
// rollback, and the scheduler never alive twice on any node.
func TestSwarmZeroDowntimeDeploys(t *testing.T) {
	t.Parallel()
	testZeroDowntimeDeploys(t, "swarm")
}

// A release task that fails aborts with nothing running changed.
func TestSwarmFailingReleaseTaskAborts(t *testing.T) {
	t.Parallel()
	testFailingReleaseTaskAborts(t, "swarm")
}

// A new release that crashes in the monitor window is rolled back, with
// its config.
func TestSwarmMonitorRollsBack(t *testing.T) {
	t.Parallel()
	testMonitorRollsBack(t, "swarm")
}

// The server SIGKILLed at representative journal steps of a deploy (after
// the start, at the commit point, before the singleton; six steps were
// measured by hand) converges on restart from the swarm's labels and the
// journal: undone before the cutover, finished after.
func TestSwarmSIGKILLAtEveryStep(t *testing.T) {
	t.Parallel()
	testSIGKILLAtEveryStep(t, "swarm")
}
