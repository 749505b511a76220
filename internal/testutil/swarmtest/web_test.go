package swarmtest

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// targets keeps the host-mode endpoints of a service's tasks that are
// running and meant to run, refreshed from the manager every interval, as
// a proxy following the cluster would.
type targets struct {
	mu   sync.Mutex
	list []string
	stop chan struct{}
	done chan struct{}
}

func followTargets(ctx context.Context, c *Cluster, serviceID string, interval time.Duration) *targets {
	tg := &targets{stop: make(chan struct{}), done: make(chan struct{})}
	refresh := func() {
		ts, err := tasksOf(ctx, c.Client(), serviceID)
		if err != nil {
			return // keep the last list while the manager does not answer
		}
		var l []string
		for _, tk := range running(ts) {
			if e := endpoint(c, tk); e != "" {
				l = append(l, e)
			}
		}
		tg.mu.Lock()
		tg.list = l
		tg.mu.Unlock()
	}
	refresh()
	go func() {
		defer close(tg.done)
		for {
			select {
			case <-tg.stop:
				return
			case <-time.After(interval):
				refresh()
			}
		}
	}()
	return tg
}

func (tg *targets) Get() []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.list
}

func (tg *targets) Stop() { close(tg.stop); <-tg.done }

// testWebReach (TestSwarmShared/WebReach): how the host (the moorage proxy) reaches web tasks.
// The routing mesh needs IPVS, which this kernel lacks (CONFIG_IP_VS is
// not set): ingress-published ports refuse connections on every node.
// Host-mode published ports, with the port left to the node, work: each
// task reports its port in Status.PortStatus and answers on its node's
// address. Task addresses on an overlay network are not reachable from the
// host, though tasks reach each other over it (VXLAN works, with DNS
// round robin, since VIPs need IPVS too). And what a scale-down does to a
// load that follows the task list.
func testWebReach(t *testing.T, c *Cluster, img *Image) {
	ctx := ctxT(t, 4*time.Minute)
	cli := c.Client()

	// 1. Routing mesh.
	mesh := webService("mesh", img.ID, 2, nil)
	mesh.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{Protocol: network.TCP, TargetPort: 8080, PublishedPort: 30080, PublishMode: swarm.PortConfigPublishModeIngress}}}
	meshID := createService(t, ctx, cli, mesh)
	waitTasks(t, ctx, cli, meshID, "mesh tasks run", func(ts []swarm.Task) bool { return len(running(ts)) == 2 })
	// A fact of the kernel, not of Swarm: recorded either way (this one
	// has no IPVS, so nothing answers; the design does not depend on it).
	var meshErrs []string
	for _, n := range c.Nodes {
		if body, err := get(n.Addr + ":30080"); err == nil {
			meshErrs = append(meshErrs, n.Name+": answered "+body)
		} else {
			meshErrs = append(meshErrs, n.Name+": "+shorten(err.Error()))
		}
	}
	ipvs := "no IPVS message in the manager's log"
	for _, line := range strings.Split(c.Manager().LogTail(2000), "\n") {
		if strings.Contains(line, "Could not get ipvs family") {
			ipvs = line[strings.Index(line, "msg="):]
			break
		}
	}
	figure(t, "routing mesh (ingress, published 30080): 2 tasks running; each node: %s; manager log: %s", strings.Join(meshErrs, ", "), ipvs)
	cli.ServiceRemove(ctx, meshID, client.ServiceRemoveOptions{})

	// 2. Host mode, port picked by the node, one task per node.
	web := webService("web", img.ID, 3, map[string]string{"moorage.app": "demo", "moorage.service": "web", "moorage.release": "v1"})
	web.TaskTemplate.Placement = &swarm.Placement{MaxReplicas: 1}
	begin := time.Now()
	webID := createService(t, ctx, cli, web)
	var ts []swarm.Task
	ts = waitTasks(t, ctx, cli, webID, "3 web tasks answer on their node's address", func(got []swarm.Task) bool {
		r := running(got)
		if len(r) != 3 {
			return false
		}
		for _, tk := range r {
			e := endpoint(c, tk)
			if e == "" {
				return false
			}
			body, err := get(e)
			if err != nil || !strings.HasPrefix(body, c.Node(tk.NodeID).Name+" ") {
				return false
			}
		}
		ts = r
		return true
	})
	var eps []string
	for _, tk := range running(ts) {
		eps = append(eps, endpoint(c, tk))
	}
	figure(t, "host mode, published port left to the node: 3 tasks answer on %v, %s after create; PortStatus of a task: %+v",
		eps, time.Since(begin).Round(time.Millisecond), ts[0].Status.PortStatus.Ports)

	// 3. Overlay: task addresses are not reachable from the host; tasks
	// reach each other over VXLAN by DNS round robin.
	ov, err := cli.NetworkCreate(ctx, "demo-net", client.NetworkCreateOptions{Driver: "overlay", Attachable: true})
	if err != nil {
		t.Fatal(err)
	}
	inner := webService("inner", img.ID, 1, nil)
	inner.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	inner.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: ov.ID}}
	inner.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.hostname==node1"}}
	innerID := createService(t, ctx, cli, inner)
	ts = waitTasks(t, ctx, cli, innerID, "inner task runs", func(ts []swarm.Task) bool { return len(running(ts)) == 1 })
	var taskIP string
	for _, a := range running(ts)[0].NetworksAttachments {
		if a.Network.Spec.Name == "demo-net" && len(a.Addresses) > 0 {
			taskIP = a.Addresses[0].Addr().String()
		}
	}
	if taskIP == "" {
		t.Fatalf("no overlay address: %+v", running(ts)[0].NetworksAttachments)
	}
	// Not dialled: the host's route for it is its default route (out of
	// the machine), not the cluster's bridge; nothing of the cluster
	// routes to an overlay (only the nodes' hidden overlay sandboxes and
	// the tasks are on it).
	route, err := exec.Command(ipPath, "-o", "route", "get", taskIP).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route get %s: %v: %s", taskIP, err, route)
	}
	if strings.Contains(string(route), c.hostIf()) {
		t.Fatalf("the host routes overlay address %s to the cluster: %s", taskIP, route)
	}
	probe := releaseJob("probe", img.ID, `wget -q -O- http://inner:8080/`, nil, never)
	probe.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: ov.ID}}
	probe.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.hostname==node2"}}
	probeID := createService(t, ctx, cli, probe)
	ts = waitTasks(t, ctx, cli, probeID, "probe job ends", func(ts []swarm.Task) bool { return len(ts) == 1 && terminal(ts[0].Status.State) })
	out, _, _ := taskLogs(ctx, cli, ts[0].ID)
	if ts[0].Status.State != swarm.TaskStateComplete || !strings.HasPrefix(out, "node1 ") {
		t.Fatalf("task on node2 → inner on node1 over the overlay: %s, output %q", describe(ts), out)
	}
	figure(t, "overlay: the host has no route to task address %s (ip route get: %s); task on node2 → http://inner:8080 (dnsrr, on node1) over VXLAN: %q", taskIP, strings.Join(strings.Fields(string(route)), " "), strings.TrimSpace(out))

	// 4. Scale-down under load: the load follows the task list (running
	// and desired running) every 100ms.
	tg := followTargets(ctx, c, webID, 100*time.Millisecond)
	defer tg.Stop()
	l := startLoad(4, tg.Get)
	if err := Poll(ctx, 10*time.Millisecond, func() (bool, error) { return l.ok.Load() >= 50, nil }); err != nil {
		t.Fatal(err)
	}
	svc, err := cli.ServiceInspect(ctx, webID, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Service.Spec
	spec.Mode.Replicated.Replicas = u64(2)
	scaled := time.Now()
	if _, err := cli.ServiceUpdate(ctx, webID, client.ServiceUpdateOptions{Version: svc.Service.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	// Scaled-down tasks get desired state "remove" and are deleted once
	// shut down: exited is in a final state, or gone.
	waitTasks(t, ctx, cli, webID, "a task has exited", func(ts []swarm.Task) bool {
		live := 0
		for _, tk := range ts {
			if !terminal(tk.Status.State) {
				live++
			}
		}
		return live == 2
	})
	exited := time.Since(scaled)
	okBefore := l.ok.Load()
	if err := Poll(ctx, 10*time.Millisecond, func() (bool, error) { return l.ok.Load() >= okBefore+50, nil }); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	figure(t, "scale 3→2 under load following the task list every 100ms: task shutdown %s after the update; %d ok, %d failed (%s)",
		exited.Round(time.Millisecond), l.ok.Load(), l.failed.Load(), l.Errors())
}
