package swarm

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
)

// nodeInfo is what the runtime knows of a swarm node.
type nodeInfo struct {
	ID       string
	Hostname string
	Addr     string // the address the node advertises (swarm's Status.Addr)
	Ready    bool
	Manager  bool
}

// watchState is what the watcher learned: the nodes, and per service how
// many times its task was restarted, which failed tasks were already
// reported, and whether a restart is awaited.
type watchState struct {
	mu       sync.Mutex
	nodes    map[string]nodeInfo // by node ID
	restarts map[string]int      // by service ID
	seen     map[string]bool     // failed task IDs already counted
	running  map[string]string   // service ID → the task last seen running
	pending  map[string]bool     // service ID → crashed, restart not yet seen
	known    map[string]bool     // services seen at least once
}

func (w *watchState) init() {
	w.nodes = map[string]nodeInfo{}
	w.restarts = map[string]int{}
	w.seen = map[string]bool{}
	w.running = map[string]string{}
	w.pending = map[string]bool{}
	w.known = map[string]bool{}
}

func (w *watchState) isSelf(hostname, selfID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, ok := w.nodes[selfID]
	return ok && n.Hostname == hostname
}

func (w *watchState) node(id string) (nodeInfo, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, ok := w.nodes[id]
	return n, ok
}

func (w *watchState) setNodes(ns []swarm.Node) {
	m := make(map[string]nodeInfo, len(ns))
	for _, n := range ns {
		m[n.ID] = nodeInfo{
			ID: n.ID, Hostname: n.Description.Hostname, Addr: n.Status.Addr,
			Ready:   n.Status.State == swarm.NodeStateReady,
			Manager: n.Spec.Role == swarm.NodeRoleManager,
		}
	}
	w.mu.Lock()
	w.nodes = m
	w.mu.Unlock()
}

func (w *watchState) restartCount(serviceID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.restarts[serviceID]
}

// refreshNodes reads the node list.
func (r *Runtime) refreshNodes(ctx context.Context) error {
	res, err := r.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	r.watch.setNodes(res.Items)
	return nil
}

// snapshot is one reading of the runtime's services and their tasks.
type snapshot struct {
	services []swarm.Service
	tasks    map[string][]swarm.Task // by service ID, newest first
}

// read lists the runtime's services and every task of them.
func (r *Runtime) read(ctx context.Context) (*snapshot, error) {
	svcs, err := r.cli.ServiceList(ctx, client.ServiceListOptions{Filters: r.names.Filter()})
	if err != nil {
		return nil, err
	}
	snap := &snapshot{services: svcs.Items, tasks: map[string][]swarm.Task{}}
	if len(svcs.Items) == 0 {
		return snap, nil
	}
	// Tasks carry the service's labels only on their container; list them
	// all and match the service IDs (a filter on a removed service is an
	// error).
	ours := map[string]bool{}
	for _, s := range svcs.Items {
		ours[s.ID] = true
	}
	ts, err := r.cli.TaskList(ctx, client.TaskListOptions{})
	if err != nil {
		return nil, err
	}
	for _, t := range ts.Items {
		if ours[t.ServiceID] {
			snap.tasks[t.ServiceID] = append(snap.tasks[t.ServiceID], t)
		}
	}
	for id := range snap.tasks {
		sortTasks(snap.tasks[id])
	}
	return snap, nil
}

// sortTasks orders tasks newest first.
func sortTasks(ts []swarm.Task) {
	slices.SortStableFunc(ts, func(a, b swarm.Task) int { return b.Meta.CreatedAt.Compare(a.Meta.CreatedAt) })
}

// watchLoop reads task states every Poll, and the nodes every second, and
// turns what changed into events.
func (r *Runtime) watchLoop() {
	var lastNodes time.Time
	for {
		if time.Since(lastNodes) >= time.Second {
			if err := r.refreshNodes(r.ctx); err == nil {
				lastNodes = time.Now()
			}
		}
		if snap, err := r.read(r.ctx); err == nil {
			r.observe(snap, true)
		} else if r.ctx.Err() == nil {
			r.log.Debug("reading the swarm's tasks", "err", err)
		}
		if sleep(r.ctx, r.opts.Poll) != nil {
			return
		}
	}
}

// observe updates the restart counts from a snapshot and, with publish,
// reports crashes and restarts. A service seen for the first time has its
// past failures counted without events (adoption).
func (r *Runtime) observe(snap *snapshot, publish bool) {
	type ev struct {
		svc  swarm.Service
		ev   runtime.InstanceEvent
		task swarm.Task
	}
	var out []ev
	r.mu.Lock()
	stopping := make(map[string]bool, len(r.stopping))
	for k := range r.stopping {
		stopping[k] = true
	}
	r.mu.Unlock()
	w := &r.watch
	w.mu.Lock()
	for _, s := range snap.services {
		if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil {
			continue // a job: Run follows it
		}
		first := !w.known[s.ID]
		w.known[s.ID] = true
		down := *s.Spec.Mode.Replicated.Replicas == 0 || stopping[s.Spec.Name]
		ts := snap.tasks[s.ID]
		// Oldest first, so that events come in order.
		for i := len(ts) - 1; i >= 0; i-- {
			t := ts[i]
			switch {
			case t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning:
				if prev := w.running[s.ID]; prev != t.ID {
					w.running[s.ID] = t.ID
					switch {
					case first:
					case w.pending[s.ID]:
						w.pending[s.ID] = false
						out = append(out, ev{svc: s, task: t, ev: runtime.InstanceEvent{Type: runtime.EventRestart, Restarts: w.restarts[s.ID]}})
					case prev != "":
						// Swarm started the instance again elsewhere because
						// the node of its task is down (lost, or cut off):
						// the old task did not crash (its state can no
						// longer be known), but the instance has a new
						// address, which a restart event makes the engine
						// route to.
						if from, ok := w.lostNode(ts, prev); ok {
							msg := "moved off node " + from + ", which is down"
							if n, ok := w.nodes[t.NodeID]; ok {
								msg += ", to " + n.Hostname
							}
							out = append(out, ev{svc: s, task: t, ev: runtime.InstanceEvent{Type: runtime.EventRestart, Restarts: w.restarts[s.ID], Message: msg}})
						}
					}
				}
			case crashed(t) && !w.seen[t.ID]:
				w.seen[t.ID] = true
				if down || replaced(ts, t, w.running[s.ID]) {
					continue
				}
				w.restarts[s.ID]++
				if first {
					continue
				}
				w.pending[s.ID] = true
				code := 0
				if t.Status.ContainerStatus != nil {
					code = t.Status.ContainerStatus.ExitCode
				}
				msg := t.Status.Err
				if msg == "" {
					msg = "exit status " + strconv.Itoa(code)
				}
				if n, ok := w.nodes[t.NodeID]; ok {
					msg += " on " + n.Hostname
				}
				out = append(out, ev{svc: s, task: t, ev: runtime.InstanceEvent{Type: runtime.EventCrash, ExitCode: code, Message: msg, Restarts: w.restarts[s.ID] - 1, Backoff: restartDelay}})
			}
		}
	}
	w.mu.Unlock()
	if !publish {
		return
	}
	for _, e := range out {
		l := e.svc.Spec.Labels
		e.ev.Time = time.Now()
		e.ev.Instance = l[containers.LabelInstance]
		e.ev.App = l[containers.LabelApp]
		e.ev.Service = l[containers.LabelService]
		e.ev.Release = l[containers.LabelRelease]
		e.ev.Kind = runtime.Kind(l[containers.LabelKind])
		r.log.Info("swarm task "+string(e.ev.Type), "instance", e.ev.Instance, "task", shortID(e.task.ID), "message", e.ev.Message)
		r.events.Publish(e.ev)
	}
}

// lostNode reports the hostname of the node of task id (one of ts) when
// that node is down. Called with w.mu held.
func (w *watchState) lostNode(ts []swarm.Task, id string) (string, bool) {
	for _, t := range ts {
		if t.ID != id {
			continue
		}
		if n, ok := w.nodes[t.NodeID]; ok && !n.Ready {
			return n.Hostname, true
		}
		return "", false
	}
	return "", false
}

// replaced reports whether the task running, one of ts, was created after
// t: t ends after the instance runs again elsewhere (Swarm moved it off a
// node that was down, and the node is back), which is no crash of the
// instance.
func replaced(ts []swarm.Task, t swarm.Task, running string) bool {
	if running == "" || running == t.ID {
		return false
	}
	for _, r := range ts {
		if r.ID == running {
			return r.Meta.CreatedAt.After(t.Meta.CreatedAt)
		}
	}
	return false
}

// crashed reports a task that ended while it was meant to run: exited (with
// any code), failed or was rejected.
func crashed(t swarm.Task) bool {
	switch t.Status.State {
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete:
		return true
	case swarm.TaskStateShutdown, swarm.TaskStateOrphaned:
		return false
	}
	return false
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// describeTask is a task's state for errors and logs.
func (r *Runtime) describeTask(t swarm.Task) string {
	node := t.NodeID
	if n, ok := r.watch.node(t.NodeID); ok {
		node = n.Hostname
	}
	s := fmt.Sprintf("task %s on %s: %s", shortID(t.ID), node, t.Status.State)
	if t.Status.Err != "" {
		s += " (" + t.Status.Err + ")"
	} else if t.Status.Message != "" && t.Status.State != swarm.TaskStateRunning {
		s += " (" + t.Status.Message + ")"
	}
	return s
}
