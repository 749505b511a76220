package swarm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Defaults of a service.
const (
	// restartDelay is how long Swarm waits before it restarts a task that
	// exited.
	restartDelay = time.Second
	// startTimeout bounds how long Start waits for a task to run (image
	// checks and scheduling on a busy cluster).
	startTimeout = 3 * time.Minute
)

// validateSpec is containers.ValidateSpec and what a cluster needs: a
// relative host path is a "./dir" of the upload (its files are Swarm
// configs: see files.go).
func validateSpec(s *runtime.InstanceSpec) error {
	return containers.ValidateSpec(s, func(m runtime.Mount) error {
		if strings.HasPrefix(m.Name, ".") && !strings.HasPrefix(m.Name, "./") {
			return fmt.Errorf("%s: host path %q: use an absolute path or ./dir: %w", s.ID(), m.Name, runtime.ErrInvalidSpec)
		}
		return nil
	})
}

// Start creates the instance's service and returns once its task runs (not
// necessarily ready). It fails with ErrExists when the service exists.
func (r *Runtime) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	return r.ids.Start(r.life.Check, &s, validateSpec, func(id string) (runtime.Instance, error) { return r.start(ctx, id, &s) })
}

func (r *Runtime) start(ctx context.Context, id string, s *runtime.InstanceSpec) (runtime.Instance, error) {
	name := r.names.Instance(id)
	if svc, err := r.cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{}); err == nil {
		if !r.names.Owned(svc.Service.Spec.Labels) {
			return runtime.Instance{}, fmt.Errorf("a swarm service named %s exists that moorage (prefix %s) does not own: %w; moorage never touches a service it did not make: remove it (docker service rm %s), or give this server its own names with --docker-prefix", name, r.opts.Prefix, runtime.ErrExists, name)
		}
		return runtime.Instance{}, runtime.ErrExists
	} else if !isNotFound(err) {
		return runtime.Instance{}, err
	}
	if err := r.EnsureNetwork(ctx, s.App); err != nil {
		return runtime.Instance{}, err
	}
	img, err := r.imageRef(ctx, s)
	if err != nil {
		return runtime.Instance{}, err
	}
	spec, err := r.taskSpec(ctx, s, img, nil)
	if err != nil {
		return runtime.Instance{}, err
	}
	if s.Single || s.Kind == runtime.KindAccessory {
		node, err := r.pinNode(ctx, s)
		if err != nil {
			return runtime.Instance{}, err
		}
		spec.TaskTemplate.Placement.Constraints = append(spec.TaskTemplate.Placement.Constraints, "node.id=="+node)
		if s.Kind == runtime.KindAccessory && s.Image != "" {
			if img, err = r.accessoryImage(ctx, s, node); err != nil {
				return runtime.Instance{}, err
			}
			spec.TaskTemplate.ContainerSpec.Image = img
		}
		if err := r.handOverVolumes(ctx, s, node, img); err != nil {
			return runtime.Instance{}, err
		}
	}
	auth, err := r.authFor(ctx, img)
	if err != nil {
		return runtime.Instance{}, err
	}
	// The nodes pull with the registry's login, which Swarm keeps with
	// the task template (never in `docker service inspect`'s spec).
	res, err := r.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec, EncodedRegistryAuth: auth.encoded})
	if err != nil {
		return runtime.Instance{}, fmt.Errorf("create service: %w", auth.scrub(err))
	}
	r.copyLogs(name, res.ID, s.App, id)
	in, err := r.waitRunning(ctx, res.ID, name)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := r.remove(rctx, id); rerr != nil {
			r.log.Warn("removing a service that did not start", "service", name, "err", rerr)
		}
		return runtime.Instance{}, err
	}
	r.log.Debug("service started", "instance", id, "service", shortID(res.ID), "node", in.Node)
	return in, nil
}

// waitRunning waits until the service's task runs, or has run and exited
// (a crash: the watcher reports it, the engine's gates see it). A task the
// nodes rejected (no such image, no suitable node) fails the start.
func (r *Runtime) waitRunning(ctx context.Context, serviceID, name string) (runtime.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last string
	for {
		snap, err := r.readService(ctx, serviceID)
		if err == nil && snap != nil {
			ts := snap.tasks[serviceID]
			for _, t := range ts {
				last = r.describeTask(t)
				switch {
				case t.Status.State == swarm.TaskStateRunning:
					return r.instance(&snap.services[0], ts), nil
				case t.Status.State == swarm.TaskStateFailed && strings.Contains(t.Status.Err, "starting container failed"):
					// Created but never started (a missing program).
					return runtime.Instance{}, fmt.Errorf("its task did not start: %s", last)
				case t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateComplete:
					if t.Status.ContainerStatus != nil && t.Status.ContainerStatus.ContainerID != "" {
						// It started, then exited: a crash, not a failed start.
						return r.instance(&snap.services[0], ts), nil
					}
					return runtime.Instance{}, fmt.Errorf("its task did not start: %s", last)
				case t.Status.State == swarm.TaskStateRejected:
					return runtime.Instance{}, fmt.Errorf("its task did not start: %s", last)
				}
			}
			if len(ts) > 0 && ts[0].Status.State == swarm.TaskStatePending && ts[0].Status.Err != "" {
				last = r.describeTask(ts[0])
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			if last == "" {
				last = "no task yet"
			}
			return runtime.Instance{}, fmt.Errorf("service %s: its task is not running after %s (%s): %w", name, startTimeout, last, runtime.ErrTimeout)
		}
	}
}

// readService reads one service and its tasks.
func (r *Runtime) readService(ctx context.Context, serviceID string) (*snapshot, error) {
	svc, err := r.cli.ServiceInspect(ctx, serviceID, client.ServiceInspectOptions{})
	if err != nil {
		return nil, err
	}
	ts, err := r.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID)})
	if err != nil {
		return nil, err
	}
	items := ts.Items
	sortTasks(items)
	return &snapshot{services: []swarm.Service{svc.Service}, tasks: map[string][]swarm.Task{serviceID: items}}, nil
}

// serviceSpec is the swarm service (or, with run, the job) of an instance.
func (r *Runtime) serviceSpec(s *runtime.InstanceSpec, img string, run *runtime.RunSpec) (swarm.ServiceSpec, error) {
	id := s.ID()
	labels := r.names.Labels(s)
	if s.Single {
		labels[labelSingle] = "1"
	}
	var mounts []mount.Mount
	vols := map[string]string{}
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Name, "./") {
			continue // files of the upload: Swarm configs (taskSpec)
		}
		if seam.IsHostPath(m.Name) {
			mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Name, Target: m.Target})
			continue
		}
		vo := &mount.VolumeOptions{Labels: map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: s.App, containers.LabelVolume: m.Name}}
		if m.Driver != "" || len(m.DriverOpts) > 0 {
			drv := m.Driver
			if drv == "" {
				drv = "local"
			}
			vo.DriverConfig = &mount.Driver{Name: drv, Options: m.DriverOpts}
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: r.names.Volume(s.App, m.Name), Target: m.Target, VolumeOptions: vo})
		vols[runtime.VolumeEnv(m.Name)] = m.Target
	}
	env := runtime.InstanceEnv(s, s.Port, vols)
	var args []string
	if len(s.Command) > 0 {
		// The image's own environment is not known here: $VAR of the
		// image's ENV expands as the shell would see it only when the
		// instance's environment sets it too.
		args = runtime.Expand(s.Command, env)
	}
	stopSignal, secs := containers.Stop(s)
	grace := time.Duration(secs) * time.Second
	cl := make(map[string]string, len(labels))
	for k, v := range labels {
		cl[k] = v
	}
	cl[containers.LabelPrefix] = taskPrefix + r.opts.Prefix
	cs := &swarm.ContainerSpec{
		Image:           img,
		Labels:          cl,
		Args:            args,
		Hostname:        containers.Hostname(id),
		Env:             runtime.EnvList(env),
		User:            s.User,
		Mounts:          mounts,
		StopSignal:      stopSignal,
		StopGracePeriod: &grace,
		ReadOnly:        s.ReadOnly,
	}
	if s.Kind != runtime.KindAccessory && s.Artifact.Workdir != "" {
		cs.Dir = s.Artifact.Workdir
	}
	if s.ReadOnly {
		cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: "/tmp"})
	}
	tt := swarm.TaskSpec{
		ContainerSpec: cs,
		Networks:      []swarm.NetworkAttachmentConfig{{Target: r.names.Network(s.App)}},
		Placement:     &swarm.Placement{},
		LogDriver:     &swarm.Driver{Name: "local", Options: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
	if s.Kind == runtime.KindAccessory {
		tt.Networks[0].Aliases = []string{s.Service}
	}
	if s.Memory > 0 || s.CPUs > 0 {
		tt.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: s.Memory, NanoCPUs: int64(s.CPUs * 1e9)}}
	}
	if p := s.Placement; p != nil {
		tt.Placement.Constraints = append(tt.Placement.Constraints, p.Constraints...)
		for _, sp := range p.Spread {
			tt.Placement.Preferences = append(tt.Placement.Preferences, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: sp}})
		}
	}
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: r.names.Instance(id), Labels: labels},
		TaskTemplate: tt,
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	if run != nil {
		one := uint64(1)
		spec.Mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}
		spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
		return spec, nil
	}
	one := uint64(1)
	delay := restartDelay
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay}
	if s.Port > 0 && s.Publish {
		labels[containers.LabelPublish] = "1"
		cl[containers.LabelPublish] = "1"
		spec.EndpointSpec.Ports = []swarm.PortConfig{{Protocol: network.TCP, TargetPort: uint32(s.Port), PublishMode: swarm.PortConfigPublishModeHost}}
	}
	return spec, nil
}

// pinNode picks the node a singleton or accessory runs on: where its
// previous instance ran (the accessory's volume is there) when that node is
// ready, else the ready node that runs the fewest of the runtime's tasks.
func (r *Runtime) pinNode(ctx context.Context, s *runtime.InstanceSpec) (string, error) {
	if err := r.refreshNodes(ctx); err != nil {
		return "", err
	}
	snap, err := r.read(ctx)
	if err != nil {
		return "", err
	}
	load := map[string]int{}
	prev := ""
	var prevAt time.Time
	for _, svc := range snap.services {
		for _, t := range snap.tasks[svc.ID] {
			if t.DesiredState == swarm.TaskStateRunning {
				load[t.NodeID]++
			}
			l := svc.Spec.Labels
			if l[containers.LabelApp] == s.App && l[containers.LabelService] == s.Service && l[containers.LabelKind] == string(s.Kind) && t.NodeID != "" && t.Meta.CreatedAt.After(prevAt) {
				prev, prevAt = t.NodeID, t.Meta.CreatedAt
			}
		}
	}
	r.watch.mu.Lock()
	nodes := make([]nodeInfo, 0, len(r.watch.nodes))
	for _, n := range r.watch.nodes {
		nodes = append(nodes, n)
	}
	r.watch.mu.Unlock()
	if n, ok := r.watch.node(prev); ok && n.Ready {
		return prev, nil
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Hostname < nodes[j].Hostname })
	best := ""
	for _, n := range nodes {
		if !n.Ready || !r.placementAllows(s, n) {
			continue
		}
		if best == "" || load[n.ID] < load[best] {
			best = n.ID
		}
	}
	if best == "" {
		return "", fmt.Errorf("no ready node can run %s (see docker node ls)", s.ID())
	}
	return best, nil
}

// placementAllows checks the few constraints that pinning can judge from
// the node list (role and hostname); the others are Swarm's to judge.
func (r *Runtime) placementAllows(s *runtime.InstanceSpec, n nodeInfo) bool {
	if s.Placement == nil {
		return true
	}
	for _, c := range s.Placement.Constraints {
		c = strings.ReplaceAll(c, " ", "")
		switch {
		case c == "node.role==manager" && !n.Manager, c == "node.role==worker" && n.Manager,
			c == "node.role!=manager" && n.Manager, c == "node.role!=worker" && !n.Manager:
			return false
		case strings.HasPrefix(c, "node.hostname==") && strings.TrimPrefix(c, "node.hostname==") != n.Hostname:
			return false
		case strings.HasPrefix(c, "node.hostname!=") && strings.TrimPrefix(c, "node.hostname!=") == n.Hostname:
			return false
		}
	}
	return true
}

// instance turns a service and its tasks (newest first) into an Instance.
func (r *Runtime) instance(svc *swarm.Service, ts []swarm.Task) runtime.Instance {
	l := svc.Spec.Labels
	in := containers.Instance(l)
	in.State, in.Restarts = runtime.StateExited, r.watch.restartCount(svc.ID)
	if in.Port > 0 {
		in.Host = in.Service
		if in.Kind != runtime.KindAccessory {
			in.Host = containers.Hostname(in.ID)
		}
	}
	replicas := uint64(0)
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		replicas = *m.Replicas
	}
	var cur *swarm.Task
	for i := range ts {
		t := &ts[i]
		if t.DesiredState == swarm.TaskStateRunning || (!final(t.Status.State) && t.Status.State != "") {
			cur = t
			break
		}
	}
	if cur == nil && len(ts) > 0 {
		cur = &ts[0]
	}
	for i := range ts {
		if final(ts[i].Status.State) && ts[i].Status.ContainerStatus != nil {
			in.ExitCode = ts[i].Status.ContainerStatus.ExitCode
			break
		}
	}
	if cur != nil {
		if n, ok := r.watch.node(cur.NodeID); ok {
			in.Node = n.Hostname
		}
	}
	// A task that is not final on a node the manager marked down: its
	// state cannot be known, and it may still run. Swarm may meanwhile
	// have made a new task for the service (pending, when the instance is
	// pinned to that node), so every task counts, not only the current,
	// except for an instance Swarm was free to move: once its current task
	// runs on a ready node, that is where it is (the old task is the
	// manager's to end when its node returns, and nothing routes to it).
	movedOn := !pinned(svc) && cur != nil && cur.DesiredState == swarm.TaskStateRunning && cur.Status.State == swarm.TaskStateRunning
	if n, ok := r.watch.node(curNode(cur)); movedOn && (!ok || !n.Ready) {
		movedOn = false
	}
	for i := range ts {
		if final(ts[i].Status.State) || (movedOn && &ts[i] != cur) {
			continue
		}
		if n, ok := r.watch.node(ts[i].NodeID); ok && !n.Ready {
			in.Unreachable, in.Node = true, n.Hostname
		}
	}
	switch {
	case replicas == 0:
		in.State = runtime.StateExited
	case cur != nil && cur.Status.State == swarm.TaskStateRunning && cur.DesiredState == swarm.TaskStateRunning:
		in.State = runtime.StateRunning
		in.StartedAt = cur.Status.Timestamp
		in.Paused = l[labelPaused] == cur.ID
		if cs := cur.Status.ContainerStatus; cs != nil {
			in.PID = cs.PID
		}
		if l[containers.LabelPublish] == "1" {
			in.Addr = r.taskAddr(cur, in.Port)
		}
	default:
		in.State = runtime.StateRestarting
	}
	return in
}

// pinned reports whether a service's tasks may only run on one node (an
// accessory or a singleton, pinned by pinNode): Swarm cannot move them.
func pinned(svc *swarm.Service) bool {
	if p := svc.Spec.TaskTemplate.Placement; p != nil {
		for _, c := range p.Constraints {
			if strings.HasPrefix(c, "node.id==") {
				return true
			}
		}
	}
	return false
}

// curNode is the node of t, "" for none.
func curNode(t *swarm.Task) string {
	if t == nil {
		return ""
	}
	return t.NodeID
}

// taskAddr is where the host reaches a task's published port: its node's
// address and the port the node picked.
func (r *Runtime) taskAddr(t *swarm.Task, port int) string {
	n, ok := r.watch.node(t.NodeID)
	if !ok || n.Addr == "" {
		return ""
	}
	for _, p := range t.Status.PortStatus.Ports {
		if int(p.TargetPort) == port && p.PublishedPort != 0 {
			return fmt.Sprintf("%s:%d", n.Addr, p.PublishedPort)
		}
	}
	return ""
}

// List returns the instances that match f (one-offs in progress are not
// listed).
func (r *Runtime) List(ctx context.Context, f runtime.Filter) ([]runtime.Instance, error) {
	if err := r.life.Check(); err != nil {
		return nil, err
	}
	// The nodes are read again (the watch reads them every second): a
	// deploy plans from this list, and must see a node the manager has
	// just marked down.
	if err := r.refreshNodes(ctx); err != nil {
		return nil, err
	}
	snap, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	r.observe(snap, false)
	var out []runtime.Instance
	for i := range snap.services {
		svc := &snap.services[i]
		if svc.Spec.Mode.Replicated == nil {
			continue
		}
		in := r.instance(svc, snap.tasks[svc.ID])
		if in.ID == "" || !f.Match(in) {
			continue
		}
		out = append(out, in)
	}
	return seam.ByID(out), nil
}

// stop is Stop (seam.Stopper): it scales the instance's service to 0 and
// returns once its task's state is final: its container has exited, on
// whichever node it ran. A task on a node that is down can never be
// confirmed stopped: Stop then fails after the stop timeout, naming the
// node, so that a singleton is never started twice.
func (r *Runtime) stop(ctx context.Context, id string) error {
	name := r.names.Instance(id)
	r.mu.Lock()
	r.stopping[name] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.stopping, name)
		r.mu.Unlock()
	}()
	svc, err := r.scaleDown(ctx, id)
	if err != nil {
		return err
	}
	spec := svc.Spec
	grace := containers.DefaultStopTimeout
	if g := spec.TaskTemplate.ContainerSpec.StopGracePeriod; g != nil {
		grace = *g
	}
	// A task on a node that is down cannot be waited for. Swarm stops it
	// when the node is back (its desired state is now shutdown), which is
	// enough for an instance that may run twice; a singleton or an
	// accessory must be seen to have exited.
	strict := spec.Labels[labelSingle] == "1" || spec.Labels[containers.LabelKind] == string(runtime.KindAccessory)
	if err := r.waitFinal(ctx, svc.ID, grace+30*time.Second, !strict); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	r.events.Publish(runtime.InstanceEvent{Time: time.Now(), Type: runtime.EventExit, Instance: id,
		App: spec.Labels[containers.LabelApp], Service: spec.Labels[containers.LabelService], Release: spec.Labels[containers.LabelRelease], Kind: runtime.Kind(spec.Labels[containers.LabelKind])})
	return nil
}

// StopLost is runtime.LostStopper: it scales the instance's service to 0
// and returns at once. Its task's desired state is then shutdown, so the
// node stops it when it is back (and a task Swarm meanwhile made pending
// for it never starts); nothing waits for that.
func (r *Runtime) StopLost(ctx context.Context, id string) error {
	return r.ids.Do(r.life.Check, id, func() error {
		_, err := r.scaleDown(ctx, id)
		return err
	})
}

// scaleDown scales the service of instance id to 0 replicas (its task's
// desired state becomes shutdown) and returns the service as it was read;
// ErrNotFound when there is none of moorage's.
func (r *Runtime) scaleDown(ctx context.Context, id string) (swarm.Service, error) {
	svc, err := r.cli.ServiceInspect(ctx, r.names.Instance(id), client.ServiceInspectOptions{})
	if isNotFound(err) {
		return swarm.Service{}, fmt.Errorf("stop %s: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return swarm.Service{}, fmt.Errorf("stop %s: %w", id, err)
	}
	if !r.names.Owned(svc.Service.Spec.Labels) {
		return swarm.Service{}, fmt.Errorf("stop %s: %w", id, runtime.ErrNotFound)
	}
	spec := svc.Service.Spec
	if m := spec.Mode.Replicated; m != nil && m.Replicas != nil && *m.Replicas > 0 {
		zero := uint64(0)
		spec.Mode.Replicated.Replicas = &zero
		if err := r.update(ctx, svc.Service.ID, svc.Service.Version, spec); err != nil {
			return swarm.Service{}, fmt.Errorf("stop %s: %w", id, err)
		}
	}
	return svc.Service, nil
}

// update applies a service spec, reading the version again when another
// update came first.
func (r *Runtime) update(ctx context.Context, serviceID string, v swarm.Version, spec swarm.ServiceSpec) error {
	for attempt := 0; ; attempt++ {
		_, err := r.cli.ServiceUpdate(ctx, serviceID, client.ServiceUpdateOptions{Version: v, Spec: spec})
		if err == nil || attempt == 4 || !strings.Contains(err.Error(), "update out of sequence") {
			return err
		}
		svc, ierr := r.cli.ServiceInspect(ctx, serviceID, client.ServiceInspectOptions{})
		if ierr != nil {
			return err
		}
		v = svc.Service.Version
	}
}

// waitFinal waits until every task of a service is in a final state.
func (r *Runtime) waitFinal(ctx context.Context, serviceID string, timeout time.Duration, downIsGone bool) error {
	deadline := time.Now().Add(timeout)
	for {
		ts, err := r.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID)})
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		var live []swarm.Task
		for _, t := range ts.Items {
			if !final(t.Status.State) {
				live = append(live, t)
			}
		}
		if len(live) == 0 {
			return nil
		}
		if downIsGone {
			up := 0
			for _, t := range live {
				if n, ok := r.watch.node(t.NodeID); !ok || n.Ready {
					up++
				}
			}
			if up == 0 {
				r.log.Warn("stopping a service whose tasks are on nodes that are down: Swarm stops them when the nodes are back", "service", serviceID)
				return nil
			}
		}
		if time.Now().After(deadline) {
			var what []string
			for _, t := range live {
				d := r.describeTask(t)
				if n, ok := r.watch.node(t.NodeID); ok && !n.Ready {
					d += fmt.Sprintf("; node %s is down, so whether it still runs cannot be known: bring the node back, or make sure it is off and remove it (docker node rm --force %s)", n.Hostname, n.Hostname)
				}
				what = append(what, d)
			}
			return fmt.Errorf("still running after %s: %s: %w", timeout, strings.Join(what, "; "), runtime.ErrTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// Remove stops the instance's service and removes it (its logs are kept).
func (r *Runtime) Remove(ctx context.Context, id string) error {
	return r.ids.Do(r.life.Check, id, func() error { return r.remove(ctx, id) })
}

func (r *Runtime) remove(ctx context.Context, id string) error {
	name := r.names.Instance(id)
	if err := r.stop(ctx, id); err != nil {
		return err // ErrNotFound when there is nothing to remove
	}
	svc, err := r.cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
	if isNotFound(err) {
		return fmt.Errorf("%s: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := r.removeService(ctx, svc.Service.ID); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	r.stopCopy(name)
	return nil
}

// removeService removes a service whose tasks are final. It first waits
// (a few seconds at most) until Swarm's task reaper has deleted them: a
// 20.10 manager removing a service while the reaper deletes its tasks
// panics (nil task in SetServiceTasksRemove).
func (r *Runtime) removeService(ctx context.Context, serviceID string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ts, err := r.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID)})
		if err != nil || len(ts.Items) == 0 {
			break
		}
		if sleep(ctx, 200*time.Millisecond) != nil {
			break
		}
	}
	if _, err := r.cli.ServiceRemove(ctx, serviceID, client.ServiceRemoveOptions{}); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
