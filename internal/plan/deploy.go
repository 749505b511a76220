package plan

import (
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// DeployInput is what Deploy decides from.
type DeployInput struct {
	App      string
	Kind     string // deploy, rollback, config
	Target   Target
	From     string // active release ("" for the first deploy)
	Build    bool   // the artifact must be built
	RunTasks bool   // run release tasks (rollbacks skip them unless asked)
	Observed []runtime.Instance
	// Specs are the specs of the releases observed instances belong to, by
	// release ID (to know which old services were routed).
	Specs map[string]*spec.Spec
	// Retention: what the prune step decides from (nil: the executor
	// decides).
	Retention *Retention
	// Proven: the target runs an artifact and config that served before
	// (a rollback): its unrouted services (workers) passed their gates
	// then, so traffic does not wait for them. They start right after the
	// cutover, still beside the old workers and still gated (min_ready or
	// their health check, in full), and the old workers stop only once
	// they passed; one that fails its gate fails the operation after its
	// commit point, which rolls it back (the previous release's web is
	// still running, unrouted, and its workers were never stopped). Web
	// services are gated before the cutover as in any deploy: traffic
	// moves to them.
	Proven bool
	// Source is the release whose artifact and config the target runs
	// unchanged (a rollback's): its web instances that still run, kept
	// warm, serve at once (ServeWarm) unless release tasks run first.
	Source string
	// Moved: the target runs on another runtime than From (a move): nothing
	// of From stays warm, so nothing of the app is left on the runtime it
	// leaves.
	Moved bool
}

// Deploy plans the deploy contract: build, prepare, accessories, release
// tasks, checks, start-first with health gates, one cutover, stop the old
// workers, singletons stop-first, monitor, drain and stop the old web,
// activate.
func Deploy(in DeployInput) *Plan {
	t := in.Target
	t.ArtifactPending = in.Build
	p := &Plan{App: in.App, Kind: in.Kind, Target: t.Release, From: in.From}
	if in.Build {
		p.Steps = append(p.Steps, Build{Release: t.Release})
	}
	p.Steps = append(p.Steps, Prepare{Release: t.Release, Volumes: VolumeNames(t.Spec)})
	p.Steps = append(p.Steps, planAccessories(t, in.Observed, true)...)
	if in.RunTasks {
		for i, task := range t.Spec.Release {
			p.Steps = append(p.Steps, Task{Release: t.Release, Index: i, Command: task.Command, Timeout: task.Timeout})
		}
	}
	for i, task := range t.Spec.Checks {
		p.Steps = append(p.Steps, Task{Check: true, Release: t.Release, Index: i, Command: task.Command, Timeout: task.Timeout})
	}
	p.Steps = append(p.Steps, converge(in.App, t, in.Observed, in.Specs, convergeOptions{
		startFirst: true,
		monitor:    t.Spec.Deploy.Monitor,
		proven:     in.Proven,
		finish:     true,
		from:       in.From,
		retention:  in.Retention,
		keepWarm:   keepWarmOf(in),
		warmFor:    t.Spec.Deploy.KeepWarm,
		serveWarm:  serveWarmSource(in),
	})...)
	return p
}

// serveWarmSource is the release whose warm web may serve a deploy's
// target at once: a rollback's source, unless release tasks run first
// (the old code must not serve before they ran).
func serveWarmSource(in DeployInput) string {
	if in.RunTasks || in.Source == in.Target.Release {
		return ""
	}
	return in.Source
}

// keepWarmOf is the release whose web a deploy keeps warm: the one it
// replaces, unless the app moves to another runtime.
func keepWarmOf(in DeployInput) string {
	if in.Moved {
		return ""
	}
	return in.From
}
