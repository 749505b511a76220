package swarmtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// beat is a singleton: one replica on a worker, that takes a second to
// exit after SIGTERM (as a scheduler finishing its tick would).
func beat(name, image string) swarm.ServiceSpec {
	grace := 10 * time.Second
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"moorage.app": "demo", "moorage.service": "beat"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           image,
				Command:         []string{"/bin/sh", "-c", `trap 'echo stopping; sleep 1; exit 0' TERM; echo started; while true; do sleep 0.1; done`},
				StopGracePeriod: &grace,
			},
			Placement:     &swarm.Placement{Constraints: []string{"node.role==worker"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(1)}},
	}
}

// containerRunning asks the node itself whether the container runs.
func containerRunning(ctx context.Context, n *Node, id string) (bool, error) {
	res, err := n.Client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if strings.Contains(err.Error(), "No such container") {
			return false, nil
		}
		return false, err
	}
	return res.Container.State.Running, nil
}

func scale(t *testing.T, ctx context.Context, cli *client.Client, id string, n uint64) {
	t.Helper()
	svc, err := cli.ServiceInspect(ctx, id, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Service.Spec
	spec.Mode.Replicated.Replicas = u64(n)
	if _, err := cli.ServiceUpdate(ctx, id, client.ServiceUpdateOptions{Version: svc.Service.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
}

// TestSwarmSingleton: stop-first for a singleton. Scaling the old service to
// 0 turns its task's desired state to shutdown at once, and its state to
// shutdown only once the container has exited (checked on the node itself
// at every poll): the task state is a sound "has exited" on a live node,
// so the new service is created only then. Removing a service instead makes
// its tasks vanish from the task list, so that is no way to wait. Under a
// network partition the manager marks the node down and Swarm itself
// starts a replacement while the old container still runs on the cut-off
// node: Swarm doubles a singleton there, by itself.
func TestSwarmSingleton(t *testing.T) {
	t.Parallel()
	c, img := startWithImage(t, Options{HeartbeatPeriod: time.Second})
	ctx := ctxT(t, 4*time.Minute)
	cli := c.Client()

	oldID := createService(t, ctx, cli, beat("demo-v1-beat", img.ID))
	ts := waitTasks(t, ctx, cli, oldID, "old beat runs", func(ts []swarm.Task) bool { return len(running(ts)) == 1 })
	old := running(ts)[0]
	oldNode := c.Node(old.NodeID)

	// Stop-first: scale the old one to 0 and watch.
	begin := time.Now()
	scale(t, ctx, cli, oldID, 0)
	var desiredAt, exitedAt time.Duration
	err := Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		tk, err := cli.TaskInspect(ctx, old.ID, client.TaskInspectOptions{})
		if err != nil {
			return false, err
		}
		if desiredAt == 0 && tk.Task.DesiredState != swarm.TaskStateRunning {
			desiredAt = time.Since(begin)
		}
		if terminal(tk.Task.Status.State) {
			// The node must agree: the container has exited.
			up, err := containerRunning(ctx, oldNode, old.Status.ContainerStatus.ContainerID)
			if err != nil {
				return false, err
			}
			if up {
				return false, fmt.Errorf("task %s is %s but its container still runs on %s", old.ID, tk.Task.Status.State, oldNode.Name)
			}
			exitedAt = time.Since(begin)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("old beat never exited: %v", err)
	}
	tk, _ := cli.TaskInspect(ctx, old.ID, client.TaskInspectOptions{})
	newID := createService(t, ctx, cli, beat("demo-v2-beat", img.ID))
	ts = waitTasks(t, ctx, cli, newID, "new beat runs", func(ts []swarm.Task) bool { return len(running(ts)) == 1 })
	figure(t, "stop-first on a live node: scale old to 0 → desired state %q after %s, state %q (container exited, checked on %s) after %s (1s of SIGTERM handling); new service created then, running %s after the update",
		tk.Task.DesiredState, desiredAt.Round(time.Millisecond), tk.Task.Status.State, oldNode.Name, exitedAt.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	// Removing a service: do its tasks stay listed until they exit?
	cur := running(ts)[0]
	curNode := c.Node(cur.NodeID)
	begin = time.Now()
	if _, err := cli.ServiceRemove(ctx, newID, client.ServiceRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	var goneAt time.Duration
	var upWhenGone bool
	if err := Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		// (A filter on a removed service is an error: list them all.)
		ts, err := cli.TaskList(ctx, client.TaskListOptions{})
		if err != nil {
			return false, err
		}
		for _, tk := range ts.Items {
			if tk.ServiceID == newID {
				return false, nil
			}
		}
		goneAt = time.Since(begin)
		upWhenGone, err = containerRunning(ctx, curNode, cur.Status.ContainerStatus.ContainerID)
		return true, err
	}); err != nil {
		t.Fatal(err)
	}
	var exited time.Duration
	Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		up, err := containerRunning(ctx, curNode, cur.Status.ContainerStatus.ContainerID)
		exited = time.Since(begin)
		return !up, err
	})
	figure(t, "service remove: its task left the task list after %s, container still running then: %v; container exited after %s: a removed service's task stays listed until its container exits, but TaskList(service=<removed>) is an error: list all and match ServiceID",
		goneAt.Round(time.Millisecond), upWhenGone, exited.Round(time.Millisecond))

	// Partition: cut the network of the node that runs a singleton.
	pID := createService(t, ctx, cli, beat("demo-v3-beat", img.ID))
	ts = waitTasks(t, ctx, cli, pID, "v3 beat runs", func(ts []swarm.Task) bool { return len(running(ts)) == 1 })
	first := running(ts)[0]
	cut := c.Node(first.NodeID)
	begin = time.Now()
	if err := cut.Disconnect(); err != nil {
		t.Fatal(err)
	}
	down, err := c.WaitNodeState(ctx, cut, swarm.NodeStateDown)
	if err != nil {
		t.Fatal(err)
	}
	ts = waitTasks(t, ctx, cli, pID, "a replacement runs elsewhere", func(ts []swarm.Task) bool {
		for _, tk := range running(ts) {
			if tk.NodeID != cut.ID {
				return true
			}
		}
		return false
	})
	replaced := time.Since(begin)
	var firstNow swarm.Task
	for _, tk := range ts {
		if tk.ID == first.ID {
			firstNow = tk
		}
	}
	stillUp, err := containerRunning(ctx, cut, first.Status.ContainerStatus.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if !stillUp {
		t.Fatalf("the cut-off node stopped its task by itself (Swarm does fence?): revisit the design note")
	}
	figure(t, "partition (heartbeat 1s): %s marked down after %s; replacement running on another node after %s while the old container still runs on %s (manager's view of the old task: desired %q state %q): two singletons at once",
		cut.Name, down.Round(time.Millisecond), replaced.Round(time.Millisecond), cut.Name, firstNow.DesiredState, firstNow.Status.State)

	// Heal: the node comes back and stops the old task.
	begin = time.Now()
	if err := cut.Reconnect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitNodeState(ctx, cut, swarm.NodeStateReady); err != nil {
		t.Fatal(err)
	}
	back := time.Since(begin)
	if err := Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		up, err := containerRunning(ctx, cut, first.Status.ContainerStatus.ContainerID)
		return !up, err
	}); err != nil {
		t.Fatal(err)
	}
	figure(t, "partition healed: %s ready again after %s, its old singleton stopped after %s", cut.Name, back.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	// Pinned to the node it runs on, a singleton is not replaced elsewhere:
	// the replacement Swarm makes when the node is down stays pending.
	pinned := beat("demo-v4-beat", img.ID)
	pinned.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.id==" + cut.ID}}
	pinID := createService(t, ctx, cli, pinned)
	ts = waitTasks(t, ctx, cli, pinID, "pinned beat runs", func(ts []swarm.Task) bool { return len(running(ts)) == 1 })
	pinnedFirst := running(ts)[0]
	if err := cut.Disconnect(); err != nil {
		t.Fatal(err)
	}
	defer cut.Reconnect()
	if _, err := c.WaitNodeState(ctx, cut, swarm.NodeStateDown); err != nil {
		t.Fatal(err)
	}
	var pending swarm.Task
	ts = waitTasks(t, ctx, cli, pinID, "the pinned singleton's replacement stays pending", func(ts []swarm.Task) bool {
		for _, tk := range ts {
			if tk.ID != pinnedFirst.ID && tk.Status.State == swarm.TaskStatePending && tk.Status.Err != "" {
				pending = tk
				return true
			}
		}
		return false
	})
	for _, tk := range ts {
		if tk.ID != pinnedFirst.ID && tk.NodeID != "" && tk.NodeID != cut.ID {
			t.Fatalf("the pinned singleton got a task on another node: %s", describe(ts))
		}
	}
	figure(t, "pinned (node.id==%s) under partition: no second instance; the replacement task is %q: %q", cut.Name, pending.Status.State, pending.Status.Err)
}
