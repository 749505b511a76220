package swarm

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
)

// When the node of a web instance's task is lost, Swarm starts the
// instance again on another node. The old task did not crash (its state
// reads running, desired shutdown, until the node is back), but the
// instance has a new address: the watcher reports a restart, which makes
// the engine route to it; when the node is back and the old task ends,
// that is no crash. A service whose task changes while its old task's
// node is up (a scale from 0, say) reports nothing.
func TestObserveMovedOffLostNode(t *testing.T) {
	r := &Runtime{log: slog.New(slog.DiscardHandler), events: runtime.NewBroker(), stopping: map[string]bool{}}
	r.watch.init()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := r.events.Subscribe(ctx)
	next := func() runtime.InstanceEvent {
		t.Helper()
		select {
		case ev := <-evs:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return runtime.InstanceEvent{}
		}
	}
	nodes := func(node1Ready bool) []swarm.Node {
		n := func(id, host string, ready bool) swarm.Node {
			st := swarm.NodeStateReady
			if !ready {
				st = swarm.NodeStateDown
			}
			var node swarm.Node
			node.ID, node.Description.Hostname, node.Status.State = id, host, st
			return node
		}
		return []swarm.Node{n("n0", "node0", true), n("n1", "node1", node1Ready), n("n2", "node2", true)}
	}
	one := uint64(1)
	svc := func(id, inst string) swarm.Service {
		var s swarm.Service
		s.ID = id
		s.Spec.Name = "p-" + inst
		s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &one}
		s.Spec.Labels = map[string]string{containers.LabelApp: "hello", containers.LabelService: "web", containers.LabelRelease: "v1",
			containers.LabelKind: string(runtime.KindService), containers.LabelInstance: inst}
		return s
	}
	at := time.Now()
	task := func(id, svc, node string, state, desired swarm.TaskState) swarm.Task {
		var tk swarm.Task
		tk.ID, tk.ServiceID, tk.NodeID, tk.Status.State, tk.DesiredState = id, svc, node, state, desired
		at = at.Add(time.Second)
		tk.Meta.CreatedAt = at
		return tk
	}
	web1, web2 := svc("s1", "hello-web-v1-1"), svc("s2", "hello-web-v1-2")
	snap := func(ts1, ts2 []swarm.Task) *snapshot {
		sortTasks(ts1)
		sortTasks(ts2)
		return &snapshot{services: []swarm.Service{web1, web2}, tasks: map[string][]swarm.Task{"s1": ts1, "s2": ts2}}
	}
	running, shutdown := swarm.TaskStateRunning, swarm.TaskStateShutdown
	old1 := task("t1", "s1", "n1", running, running)
	old2 := task("t2", "s2", "n2", running, running)

	r.watch.setNodes(nodes(true))
	r.observe(snap([]swarm.Task{old1}, []swarm.Task{old2}), true)
	// node1 is lost; Swarm starts web1 again on node2. web2's task changes
	// too, on a node that is up (stopped and started again).
	r.watch.setNodes(nodes(false))
	old1.DesiredState = shutdown
	old2.Status.State, old2.DesiredState = shutdown, shutdown
	moved := task("t3", "s1", "n2", running, running)
	again := task("t4", "s2", "n2", running, running)
	r.observe(snap([]swarm.Task{old1, moved}, []swarm.Task{old2, again}), true)
	r.events.Publish(runtime.InstanceEvent{Type: "marker"})

	ev := next()
	if ev.Type != runtime.EventRestart || ev.Instance != "hello-web-v1-1" || ev.Message != "moved off node node1, which is down, to node2" {
		t.Fatalf("event %+v, want web1's restart, moved off node1", ev)
	}
	if ev := next(); ev.Type != "marker" {
		t.Fatalf("event %+v, want none for web2 (its old node is up)", ev)
	}
	// Seen once is enough.
	r.observe(snap([]swarm.Task{old1, moved}, []swarm.Task{old2, again}), true)
	r.events.Publish(runtime.InstanceEvent{Type: "marker"})
	if ev := next(); ev.Type != "marker" {
		t.Fatalf("event %+v, want nothing new", ev)
	}

	// moorage ps shows web1 where it runs now: not on the down node (its
	// old task is the manager's to end when node1 returns).
	ts := []swarm.Task{old1, moved}
	sortTasks(ts)
	if in := r.instance(&web1, ts); in.Unreachable || in.Node != "node2" || in.State != runtime.StateRunning {
		t.Errorf("web1 moved to node2 reads %s on %q, unreachable %v", in.State, in.Node, in.Unreachable)
	}
	// A pinned instance (a singleton, an accessory) cannot move: Swarm's
	// new task waits for node1, and whether the old one still runs cannot
	// be known.
	pinnedSvc := web1
	pinnedSvc.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.id==n1"}}
	ts = []swarm.Task{old1, task("t6", "s1", "n1", swarm.TaskStatePending, running)}
	sortTasks(ts)
	if in := r.instance(&pinnedSvc, ts); !in.Unreachable || in.Node != "node1" {
		t.Errorf("a pinned instance on the down node1 reads %s on %q, unreachable %v", in.State, in.Node, in.Unreachable)
	}

	// node1 is back, and its agent reports the old task failed: the
	// instance did not crash, it runs on node2 since.
	r.watch.setNodes(nodes(true))
	old1.Status.State = swarm.TaskStateFailed
	r.observe(snap([]swarm.Task{old1, moved}, []swarm.Task{old2, again}), true)
	r.events.Publish(runtime.InstanceEvent{Type: "marker"})
	if ev := next(); ev.Type != "marker" {
		t.Fatalf("event %+v, want none for the lost task ending", ev)
	}
	if n := r.watch.restartCount("s1"); n != 0 {
		t.Fatalf("%d restarts counted, want 0", n)
	}
	// The moved task crashes: that is a crash.
	moved.Status.State, moved.DesiredState = swarm.TaskStateFailed, shutdown
	r.observe(snap([]swarm.Task{old1, moved, task("t5", "s1", "n2", swarm.TaskStatePending, running)}, []swarm.Task{old2, again}), true)
	if ev := next(); ev.Type != runtime.EventCrash || ev.Instance != "hello-web-v1-1" {
		t.Fatalf("event %+v, want web1's crash", ev)
	}
}
