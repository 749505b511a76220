package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// The node that runs the scheduler is lost (a power cut: its dockerd and
// every task on it die, and the manager marks it down). A deploy then
// cannot know whether the old scheduler still runs, so it fails before it
// starts a new one, naming the node, and leaves the old release as it
// was. Once the node is back, the next deploy goes through, and the
// scheduler was never alive twice.
func swarmSingletonNodeLoss(t *testing.T) {
	s := startServerRT(t, "swarm")
	app := s.helloSchedulerOnNode2(t)

	n2 := s.swarm.Nodes[2]
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.swarm.WaitNodeState(ctx, n2, swarm.NodeStateDown); err != nil {
		t.Fatal(err)
	}
	// moorage ps says so.
	waitFor(t, time.Minute, "moorage ps to show the scheduler's node down", func() error {
		out := s.mustRun("ps", "-a", "hello", "--json")
		for _, in := range s.ps("hello").Instances {
			if in.Service == "scheduler" && in.Down && in.Node == "node2" {
				return nil
			}
		}
		return fmt.Errorf("ps: %s", out)
	})

	setMessage(t, app, "after")
	out := s.deploy(app, 1)
	if !strings.Contains(out, "runs on node node2, which is down") {
		t.Fatalf("the failed deploy does not name the lost node:\n%s", out)
	}
	st := s.ps("hello")
	if st.Active != "v1" {
		t.Fatalf("active %s after the failed deploy, want v1", st.Active)
	}
	for _, in := range st.Instances {
		if in.Release == "v2" && in.State == "running" {
			t.Fatalf("%s of the failed deploy still runs", in.ID)
		}
	}
	s.waitBody("/", "message=before")
	if c := volumeFile(s, "hello", "scheduler-conflicts.log"); c != "" {
		t.Fatalf("two schedulers were alive at once:\n%s", c)
	}
	if n := strings.Count(volumeFile(s, "hello", "scheduler.log"), "start "); n != 1 {
		t.Fatalf("%d scheduler starts while node2 was down, want only v1's:\n%s", n, volumeFile(s, "hello", "scheduler.log"))
	}

	// The node comes back; the next deploy replaces the scheduler there.
	s.restartNode(ctx, n2)
	s.deploy(app, 0)
	s.waitBody("/", "message=after")
	if c := volumeFile(s, "hello", "scheduler-conflicts.log"); c != "" {
		t.Fatalf("two schedulers were alive at once:\n%s", c)
	}
	for _, in := range s.ps("hello").Instances {
		if in.Service == "scheduler" && (in.Release == "v1" || in.Node != "node2") {
			t.Fatalf("scheduler after the node came back: %+v", in)
		}
	}
}

// helloSchedulerOnNode2 deploys the example app (message "before") with
// its scheduler placed on node2 and everything else elsewhere, and checks
// that it runs so; it returns the app's directory.
func (s *server) helloSchedulerOnNode2(t *testing.T) string {
	t.Helper()
	elsewhere := "\n    placement: {constraints: [node.hostname!=node2]}"
	app := s.hello(t, append(slices.Clone(fastSpec),
		"    singleton: true", "    singleton: true\n    placement: {constraints: [node.hostname==node2]}",
		"    replicas: 2", "    replicas: 2"+elsewhere,
		"    min_ready: 1s", "    min_ready: 1s"+elsewhere)...)
	setMessage(t, app, "before")
	s.deploy(app, 0)
	s.waitBody("/", "message=before")
	for _, in := range s.ps("hello").Instances {
		if in.Service == "scheduler" && in.Node != "node2" || in.Service != "scheduler" && in.Node == "node2" {
			t.Fatalf("%s runs on %q, against its placement", in.ID, in.Node)
		}
	}
	return app
}

// restartNode starts a killed node's dockerd again and waits until the
// manager sees it ready.
func (s *server) restartNode(ctx context.Context, n *swarmtest.Node) {
	s.t.Helper()
	if err := n.Restart(ctx); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.swarm.WaitNodeState(ctx, n, swarm.NodeStateReady); err != nil {
		s.t.Fatal(err)
	}
}
