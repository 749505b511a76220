package e2e

import (
	"sync"
	"testing"

	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// swarmTests are the end-to-end tests on real three-node swarms, longest
// first (their times in a full run of the suite, 2026-12-07: 226 s down to
// 16 s, 1,336 s in all), so that the lanes of TestSwarm end close together
// (675 s and 661 s in that run).
var swarmTests = []struct {
	name string
	run  func(*testing.T)
}{
	{"SIGKILLAtEveryStep", swarmSIGKILLAtEveryStep},
	{"ComposeMediaCMSShape", swarmComposeMediaCMSShape},
	{"ZeroDowntimeDeploys", swarmZeroDowntimeDeploys},
	{"PostgresBackup", swarmPostgresBackup},
	{"RevertWithSchedulerNodeLost", swarmRevertWithSchedulerNodeLost},
	{"WebNodeLossUnderLoad", swarmWebNodeLossUnderLoad},
	{"RegistryLogin", swarmRegistryLogin},
	{"MonitorRollsBack", swarmMonitorRollsBack},
	{"ServerStartsWhileManagerDown", swarmServerStartsWhileManagerDown},
	{"Registry", swarmRegistry},
	{"SingletonNodeLoss", swarmSingletonNodeLoss},
	{"ComposeFiles", swarmComposeFiles},
	{"FailingReleaseTaskAborts", swarmFailingReleaseTaskAborts},
	{"RunInteractive", swarmRunInteractive},
}

// TestSwarm runs swarmTests in lanes, one per swarm cluster this machine
// runs at once (swarmtest.Running, MOORAGE_SWARMTEST_CLUSTERS): each lane
// takes the next test of the list when its last one ends, and runs it on a
// cluster of its own. Each test takes one of the package's slots first,
// before any other test waiting for one (gate_test.go): these are the
// suite's longest path. As parallel tests of their own they started when
// Go's scheduler picked them, and waited for a free cluster while they
// held a slot (6 minutes for one in a full run).
//
// One of them by hand: go test -run 'TestSwarm/ZeroDowntimeDeploys$' ./e2e/
func TestSwarm(t *testing.T) {
	t.Parallel() // its subtests take the slots
	next := make(chan int, len(swarmTests))
	for i := range swarmTests {
		next <- i
	}
	close(next)
	var lanes sync.WaitGroup
	for range swarmtest.Running() {
		lanes.Add(1)
		go func() {
			defer lanes.Done()
			for i := range next {
				t.Run(swarmTests[i].name, func(t *testing.T) {
					slots.acquire(true)
					t.Cleanup(slots.release)
					swarmTests[i].run(t)
				})
			}
		}()
	}
	lanes.Wait()
}

// The deploy contract on a real three-node swarm (a manager and two
// workers, each a dockerd in its own network namespace), through the same
// tests as the other runtimes: a server started with --swarm-host and
// --swarm-node, the example app deployed with --runtime swarm.

// Deploys under load (five here; ten were measured by hand) with no failed
// request, the migration once per deploy and never two at once, a
// rollback, and the scheduler never alive twice on any node.
func swarmZeroDowntimeDeploys(t *testing.T) {
	testZeroDowntimeDeploys(t, "swarm")
}

// A release task that fails aborts with nothing running changed.
func swarmFailingReleaseTaskAborts(t *testing.T) {
	testFailingReleaseTaskAborts(t, "swarm")
}

// A new release that crashes in the monitor window is rolled back, with
// its config.
func swarmMonitorRollsBack(t *testing.T) {
	testMonitorRollsBack(t, "swarm")
}

// The server SIGKILLed at representative journal steps of a deploy (after
// the start, at the commit point, before the singleton; six steps were
// measured by hand) converges on restart from the swarm's labels and the
// journal: undone before the cutover, finished after.
func swarmSIGKILLAtEveryStep(t *testing.T) {
	testSIGKILLAtEveryStep(t, "swarm")
}
