package swarmtest

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// TestSwarmNodeLoss: a worker is powered off (its whole node killed) while
// a 2-replica web service serves a load that follows the manager's task
// list every 100ms, as a proxy without health checks would. Measured: how
// long until the manager reports the node down (heartbeat 1s), until a
// replacement task runs, the failed requests in between, what the manager
// says of the dead node's task, and how the node comes back.
func TestSwarmNodeLoss(t *testing.T) {
	t.Parallel()
	c, img := startWithImage(t, Options{HeartbeatPeriod: time.Second})
	ctx := ctxT(t, 4*time.Minute)
	cli := c.Client()

	web := webService("demo-v1-web", img.ID, 2, map[string]string{"moorage.app": "demo", "moorage.service": "web"})
	web.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.role==worker"}}
	webID := createService(t, ctx, cli, web)
	ts := waitTasks(t, ctx, cli, webID, "2 web tasks answer", func(ts []swarm.Task) bool {
		r := running(ts)
		if len(r) != 2 {
			return false
		}
		for _, tk := range r {
			if _, err := get(endpoint(c, tk)); err != nil {
				return false
			}
		}
		return true
	})
	victim := running(ts)[0]
	dead := c.Node(victim.NodeID)

	tg := followTargets(ctx, c, webID, 100*time.Millisecond)
	defer tg.Stop()
	l := startLoad(4, tg.Get)
	if err := Poll(ctx, 10*time.Millisecond, func() (bool, error) { return l.ok.Load() >= 100, nil }); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	down, err := c.WaitNodeState(ctx, dead, swarm.NodeStateDown)
	if err != nil {
		t.Fatal(err)
	}
	ts = waitTasks(t, ctx, cli, webID, "a replacement answers", func(ts []swarm.Task) bool {
		r := running(ts)
		if len(r) != 2 {
			return false
		}
		for _, tk := range r {
			if tk.NodeID == dead.ID {
				return false
			}
			if _, err := get(endpoint(c, tk)); err != nil {
				return false
			}
		}
		return true
	})
	replaced := time.Since(begin)
	okBefore := l.ok.Load()
	if err := Poll(ctx, 10*time.Millisecond, func() (bool, error) { return l.ok.Load() >= okBefore+100, nil }); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	var window time.Duration
	if l.failed.Load() > 0 {
		window = time.Duration(l.lastFail.Load() - l.firstFail.Load())
	}
	vt, err := cli.TaskInspect(ctx, victim.ID, client.TaskInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	figure(t, "power cut of %s (heartbeat 1s): node down after %s; replacement running and answering after %s; load following the task list: %d ok, %d failed over %s (%s); the dead node's task: desired %q, state %q",
		dead.Name, down.Round(time.Millisecond), replaced.Round(time.Millisecond), l.ok.Load(), l.failed.Load(), window.Round(time.Millisecond), l.Errors(), vt.Task.DesiredState, vt.Task.Status.State)

	// The node comes back with its state and rejoins by itself.
	begin = time.Now()
	if err := dead.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	started := time.Since(begin)
	if _, err := c.WaitNodeState(ctx, dead, swarm.NodeStateReady); err != nil {
		t.Fatal(err)
	}
	var vstate swarm.TaskState
	if err := Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		vt, err := cli.TaskInspect(ctx, victim.ID, client.TaskInspectOptions{})
		if err != nil {
			return false, err
		}
		vstate = vt.Task.Status.State
		return terminal(vstate), nil
	}); err != nil {
		t.Fatalf("the restarted node's old task never reached a final state: %s (%v)", vstate, err)
	}
	figure(t, "restart of %s: dockerd answers after %s, node ready after %s; its old task then %q; 2 tasks run",
		dead.Name, started.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond), vstate)
	ts, _ = tasksOf(ctx, cli, webID)
	if len(running(ts)) != 2 {
		t.Fatalf("after the restart: %s", describe(ts))
	}
}

// TestSwarmHeartbeat: the dispatcher heartbeat period is 5s by default and
// a killed worker is marked down after about three of them; it is part of
// the swarm spec (Dispatcher.HeartbeatPeriod), and changing it on a running
// swarm takes effect.
func TestSwarmHeartbeat(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{})
	ctx := ctxT(t, 4*time.Minute)
	cli := c.Client()
	sw, err := cli.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sw.Swarm.Spec.Dispatcher.HeartbeatPeriod; got != 5*time.Second {
		t.Fatalf("default heartbeat period %s, want 5s", got)
	}
	w := c.Workers()[0]
	if err := w.Kill(); err != nil {
		t.Fatal(err)
	}
	downDefault, err := c.WaitNodeState(ctx, w, swarm.NodeStateDown)
	if err != nil {
		t.Fatal(err)
	}

	spec := sw.Swarm.Spec
	spec.Dispatcher.HeartbeatPeriod = time.Second
	if _, err := cli.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Swarm.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	// A node learns the period when it registers: restart the killed one
	// and kill it again.
	if err := w.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitNodeState(ctx, w, swarm.NodeStateReady); err != nil {
		t.Fatal(err)
	}
	w2 := w
	if err := w2.Kill(); err != nil {
		t.Fatal(err)
	}
	downFast, err := c.WaitNodeState(ctx, w2, swarm.NodeStateDown)
	if err != nil {
		t.Fatal(err)
	}
	if downFast >= downDefault {
		t.Errorf("heartbeat 1s: down after %s, not sooner than with 5s (%s)", downFast, downDefault)
	}
	figure(t, "killed worker marked down after %s with the default heartbeat (5s), %s after SwarmUpdate to Dispatcher.HeartbeatPeriod=1s", downDefault.Round(time.Millisecond), downFast.Round(time.Millisecond))
}
