package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// StepKind names what a plan step does.
type StepKind string

// Step kinds, in the order a deploy uses them.
const (
	StepBuild     StepKind = "build"     // build the target's artifact
	StepPrepare   StepKind = "prepare"   // ensure the app's network and volumes
	StepAccessory StepKind = "accessory" // start, keep or restart an accessory
	StepRelease   StepKind = "release"   // run a release task in a one-off instance
	StepCheck     StepKind = "check"     // run a check in a one-off instance
	StepRoute     StepKind = "route"     // route to what already runs (recovery), no health gate
	StepStart     StepKind = "start"     // start instances beside the old ones, health-gated
	StepCutover   StepKind = "cutover"   // swap every route of the app at once
	StepStop      StepKind = "stop"      // stop (and remove) instances
	StepSingleton StepKind = "singleton" // stop (a routed one: drain first) the old singleton, then start (and route) the new one
	StepMonitor   StepKind = "monitor"   // watch the target; a failure rolls back
	StepDrain     StepKind = "drain"     // drain and stop the old web instances
	StepActivate  StepKind = "activate"  // finish: the target is the active release
	StepAdopt     StepKind = "adopt"     // the app's config follows the target's (after activate)
	StepPrune     StepKind = "prune"     // remove the artifacts of releases beyond keep_releases
	StepRestore   StepKind = "restore"   // restore a backup (Name) into the target's volume or database
	// Steps of stop, start and destroy (plan_ops.go).
	StepMaintenance StepKind = "maintenance" // Action "on" (recorded: the app is stopped) or "off"
	StepUnroute     StepKind = "unroute"     // the proxy stops serving the app's hosts; their certificates go
	StepArtifacts   StepKind = "artifacts"   // remove the artifacts (release dirs, images) IDs
	StepVolumes     StepKind = "volumes"     // delete the volumes Volumes and their data
	StepBackups     StepKind = "backups"     // delete the backups IDs (files and records)
	StepForget      StepKind = "forget"      // delete the app's records (the audit keeps its entry)
)

// Accessory actions.
const (
	AccessoryStart   = "start"
	AccessoryKeep    = "keep"
	AccessoryRestart = "restart"
	// AccessoryStop stops and removes an accessory and records it as
	// stopped: deploys, rollbacks and recovery leave it stopped
	// (AccessoryStopped) until `moorage accessory start`.
	AccessoryStop    = "stop"
	AccessoryStopped = "stay stopped"
	// AccessoryRemove stops and removes an accessory the active release
	// no longer declares, and forgets it.
	AccessoryRemove = "remove"
)

// Gate says when a started instance counts as ready.
type Gate struct {
	Kind     string        // "http", "tcp", "command", "min_ready"
	Path     string        // http
	Command  []string      // command
	Interval time.Duration // between checks
	Within   time.Duration // how long it may take (start_period, or min_ready)
	// Else is, for an "image" gate planned before the artifact is built,
	// the gate if the image turns out to have no HEALTHCHECK.
	Else *Gate
}

// Resolve is the gate for an instance of an artifact that has (or has not)
// a HEALTHCHECK taking up to wait: an "image" gate planned before the build
// becomes its Else when there is none.
func (g Gate) Resolve(healthcheck bool, wait time.Duration) Gate {
	if g.Kind != "image" {
		return g
	}
	if !healthcheck && g.Else != nil {
		return *g.Else
	}
	if g.Within <= 0 {
		g.Within = wait
		if g.Within <= 0 {
			g.Within = imageHealthWait
		}
	}
	g.Else = nil
	return g
}

// watched is g for an instance the monitor window watches for crashes
// once it starts: staying up min_ready need not be waited before the
// window (it is the same test, longer); any other gate stays.
func (g Gate) watched(monitor time.Duration) Gate {
	if monitor <= 0 {
		return g
	}
	if g.Kind == "min_ready" {
		return Gate{Kind: "started"}
	}
	if g.Else != nil && g.Else.Kind == "min_ready" {
		g.Else = &Gate{Kind: "started"}
	}
	return g
}

func (g Gate) String() string {
	switch g.Kind {
	case "http":
		return "ready on http " + g.Path
	case "tcp":
		return "ready on tcp connect"
	case "started":
		return "watched by the monitor"
	case "image":
		if g.Else != nil {
			return "ready when the image's HEALTHCHECK passes if it has one, else " + g.Else.String()
		}
		return fmt.Sprintf("ready when the image's HEALTHCHECK passes (within %s)", g.Within)
	case "command":
		return "ready when `" + strings.Join(g.Command, " ") + "` passes"
	default:
		return fmt.Sprintf("ready after %s up", g.Within)
	}
}

// Start is one service's part of a start step.
type Start struct {
	Service string
	Release string
	Indices []int
	Gate    Gate
	Routed  bool
}

// Step is one step of a plan. Only the fields its Kind uses are set.
type Step struct {
	Kind    StepKind
	Release string        // the release it acts on
	Name    string        // accessory name, task label
	Action  string        // accessory action
	Reason  string        // why (accessory restart, keep)
	Task    int           // release task / check index (0-based)
	Command []string      // task command
	Timeout time.Duration // task timeout; StepDrain and a routed StepSingleton: drain timeout
	Starts  []Start       // StepStart
	IDs     []string      // instances to stop, or the singleton's old instances
	Service string        // singleton service
	Index   int           // singleton index to start
	// Routes are the instance IDs routed: by a StepCutover or StepRoute,
	// and by a routed StepSingleton once its new instance is ready (every
	// routed instance of the target by then, the new one included).
	Routes []string
	Held   []string // StepCutover: routed singleton services whose requests wait for their singleton step
	// Commit: this StepCutover is the operation's commit point: it records
	// the target as the active release, and a failure after it rolls back
	// (undo, revert and recovery cutovers only route, the release they
	// bring back is active again).
	Commit bool
	Keep   int // StepPrune: the releases that served kept (keep_releases)
	// Prune (StepPrune): the releases whose artifacts it removes, decided
	// at planning (pruneList); nil when the plan was made without the
	// app's history (then the executor decides, as before).
	Prune    []string
	Duration time.Duration
	Volumes  []string
	Hosts    []string // StepUnroute: the hosts the proxy stops serving
	// SkipStart: singleton with replicas 0 in the target.
	SkipStart bool
	// Routed: a singleton of a routed service (a stop-first web): its old
	// instance, unrouted by the cutover, is drained before it stops, and
	// the new one is routed (Routes) once it passes its health check.
	Routed bool
	Gate   Gate // singleton: when the new one counts as started
}

// Plan is what a deploy, rollback or recovery will do, in order. It is the
// pure result of Plan*: the executor follows it and makes no decisions.
type Plan struct {
	App    string
	Kind   string // deploy, rollback, config, converge
	Target string // the release it converges to ("" = none: remove everything)
	From   string // the active release when planned
	Steps  []Step
}

// String renders the plan, one numbered step a line; tests compare it.
func (p *Plan) String() string {
	var b strings.Builder
	from := p.From
	if from == "" {
		from = "none"
	}
	target := p.Target
	if target == "" {
		target = "nothing"
	}
	fmt.Fprintf(&b, "%s %s %s (active: %s)\n", p.Kind, p.App, target, from)
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%3d. %s\n", i+1, s.String())
	}
	return b.String()
}

// String renders one step.
func (s Step) String() string {
	switch s.Kind {
	case StepBuild:
		return "build " + s.Release
	case StepPrepare:
		if len(s.Volumes) == 0 {
			return "prepare: network"
		}
		return "prepare: network, volumes " + strings.Join(s.Volumes, " ")
	case StepAccessory:
		out := fmt.Sprintf("accessory %s: %s", s.Name, s.Action)
		if s.Reason != "" {
			out += " (" + s.Reason + ")"
		}
		return out
	case StepRelease, StepCheck:
		return fmt.Sprintf("%s task %d in %s: %s", s.Kind, s.Task+1, s.Release, strings.Join(s.Command, " "))
	case StepStart:
		parts := make([]string, len(s.Starts))
		for i, st := range s.Starts {
			parts[i] = fmt.Sprintf("%s %s ×%d %v, %s", st.Service, st.Release, len(st.Indices), st.Indices, st.Gate)
		}
		return "start " + strings.Join(parts, "; ")
	case StepRoute:
		return fmt.Sprintf("route %s to running %s", s.Release, listOrNone(s.Routes))
	case StepCutover:
		out := fmt.Sprintf("cutover: route every host to %s %s", s.Release, listOrNone(s.Routes))
		if len(s.Held) > 0 {
			out += fmt.Sprintf("; requests for %s wait for its singleton step", strings.Join(s.Held, ", "))
		}
		if s.Commit {
			out += fmt.Sprintf("; commit point: %s becomes the active release", s.Release)
		}
		return out
	case StepStop:
		return "stop " + listOrNone(s.IDs)
	case StepSingleton:
		stop := "stop nothing running"
		switch {
		case len(s.IDs) > 0 && s.Routed:
			stop = fmt.Sprintf("drain (up to %s) and stop %s", s.Timeout, strings.Join(s.IDs, " "))
		case len(s.IDs) > 0:
			stop = "stop " + strings.Join(s.IDs, " ")
		}
		if s.SkipStart {
			return fmt.Sprintf("singleton %s: %s (0 replicas in %s)", s.Service, stop, s.Release)
		}
		out := fmt.Sprintf("singleton %s: %s, then start %s [%d], %s", s.Service, stop, s.Release, s.Index, s.Gate)
		if s.Routed {
			out += fmt.Sprintf(", then route every host to %s %s", s.Release, listOrNone(s.Routes))
		}
		return out
	case StepMonitor:
		return fmt.Sprintf("monitor %s for %s", s.Release, s.Duration)
	case StepDrain:
		return fmt.Sprintf("drain (up to %s) and stop %s", s.Timeout, listOrNone(s.IDs))
	case StepActivate:
		return "activate " + s.Release
	case StepAdopt:
		return fmt.Sprintf("adopt the config of %s for `moorage config` and later deploys", s.Release)
	case StepPrune:
		text := fmt.Sprintf("prune the artifacts of releases beyond keep_releases (%d)", s.Keep)
		if s.Prune != nil {
			text += ": " + listOrNone(s.Prune)
		}
		return text
	case StepRestore:
		return "restore backup " + s.Name
	case StepMaintenance, StepUnroute, StepArtifacts, StepVolumes, StepBackups, StepForget:
		return s.opString()
	}
	return string(s.Kind)
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, " ")
}

// Target is the release a plan converges to.
type Target struct {
	Release   string     // "v4"
	Spec      *spec.Spec // its spec
	Formation map[string]int
	// AccessoryHash is the hash of each accessory's spec.
	AccessoryHash map[string]string
	// ImageHealthcheck: the artifact has its own health check (a docker
	// HEALTHCHECK), which gates services the spec gives none;
	// ImageHealthWait is how long it may take (0: imageHealthWait).
	ImageHealthcheck bool
	ImageHealthWait  time.Duration
	// ArtifactPending: the deploy builds the artifact, so whether it has
	// a HEALTHCHECK is known only then (set by PlanDeploy).
	ArtifactPending bool
	// StoppedAccessories were stopped with `moorage accessory stop`: no
	// plan starts them (they stay stopped) until `moorage accessory start`.
	StoppedAccessories map[string]bool
}

// Replicas is the target's replica count for a service.
func (t *Target) Replicas(svc string) int {
	if n, ok := t.Formation[svc]; ok {
		return n
	}
	if s := t.Spec.Services[svc]; s != nil {
		return s.Replicas
	}
	return 0
}

// DeployInput is what PlanDeploy decides from.
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
	// (a rollback): its workers passed their min_ready once already, so
	// they are not made to wait it again before the cutover when a
	// monitor window follows (it watches them for crashes, and a crash
	// there rolls back as in any deploy). Health-checked services are
	// still gated: traffic moves to them.
	Proven bool
}

// PlanDeploy plans the deploy contract: build, prepare, accessories, release
// tasks, checks, start-first with health gates, one cutover, stop the old
// workers, singletons stop-first, monitor, drain and stop the old web,
// activate.
func PlanDeploy(in DeployInput) *Plan {
	t := in.Target
	t.ArtifactPending = in.Build
	p := &Plan{App: in.App, Kind: in.Kind, Target: t.Release, From: in.From}
	if in.Build {
		p.Steps = append(p.Steps, Step{Kind: StepBuild, Release: t.Release})
	}
	p.Steps = append(p.Steps, Step{Kind: StepPrepare, Release: t.Release, Volumes: volumeNames(t.Spec)})
	p.Steps = append(p.Steps, planAccessories(t, in.Observed, true)...)
	if in.RunTasks {
		for i, task := range t.Spec.Release {
			p.Steps = append(p.Steps, Step{Kind: StepRelease, Release: t.Release, Task: i, Command: task.Command, Timeout: task.Timeout})
		}
	}
	for i, task := range t.Spec.Checks {
		p.Steps = append(p.Steps, Step{Kind: StepCheck, Release: t.Release, Task: i, Command: task.Command, Timeout: task.Timeout})
	}
	p.Steps = append(p.Steps, converge(in.App, t, in.Observed, in.Specs, convergeOptions{
		startFirst: true,
		monitor:    t.Spec.Deploy.Monitor,
		proven:     in.Proven,
		finish:     true,
		from:       in.From,
		retention:  in.Retention,
	})...)
	return p
}

// ConvergeInput is what PlanConverge decides from.
type ConvergeInput struct {
	App      string
	Kind     string // "revert", "recover", "converge"
	Target   *Target
	From     string
	Observed []runtime.Instance
	Specs    map[string]*spec.Spec // as in DeployInput
	// Unrouted says the proxy has no route for the app yet (after a
	// restart): route to what runs before starting anything.
	Unrouted bool
	// Stopped: the app was stopped with `moorage stop` (recovery of a
	// stopped app): every service converges to no instance, whatever the
	// formation; accessories stay as Target says.
	Stopped bool
	// Finish: the plan carries an operation to Target (scale, restore):
	// its cutover is the commit point, and after activate the target's
	// config is adopted (when Target is not From) and old artifacts are
	// pruned. Unset for undo, revert and recovery, which bring back what
	// was active.
	Finish bool
	// Retention, with Finish: what the prune step decides from.
	Retention *Retention
}

// PlanConverge plans how to bring what runs to the target release with the
// least disruption: used to revert a deploy (the monitor saw the new release
// fail), to finish or undo a deploy interrupted by a server crash, and to
// restore instances that died while nobody watched. Web instances of the
// target that run already are routed first; missing ones start health-gated;
// the rest of the target's services start after the cutover. A nil Target
// removes every service instance of the app.
func PlanConverge(in ConvergeInput) *Plan {
	p := &Plan{App: in.App, Kind: in.Kind, From: in.From}
	if in.Target == nil {
		var ids []string
		for _, o := range in.Observed {
			if o.Kind != runtime.KindAccessory {
				ids = append(ids, o.ID)
			}
		}
		sort.Strings(ids)
		if len(ids) > 0 {
			p.Steps = append(p.Steps, Step{Kind: StepStop, IDs: ids})
		}
		return p
	}
	t := *in.Target
	if in.Stopped {
		t.Formation = stoppedFormation(t.Spec)
	}
	p.Target = t.Release
	p.Steps = append(p.Steps, Step{Kind: StepPrepare, Release: t.Release, Volumes: volumeNames(t.Spec)})
	p.Steps = append(p.Steps, planAccessories(t, in.Observed, false)...)
	if in.Unrouted {
		if routes := runningRouted(t, in.Observed); len(routes) > 0 {
			p.Steps = append(p.Steps, Step{Kind: StepRoute, Release: t.Release, Routes: routes})
		}
	}
	p.Steps = append(p.Steps, converge(in.App, t, in.Observed, in.Specs, convergeOptions{finish: in.Finish, from: in.From, retention: in.Retention})...)
	return p
}

type convergeOptions struct {
	startFirst bool          // start every non-singleton service before cutover (deploy)
	monitor    time.Duration // monitor window after cutover
	proven     bool          // the target served before: see DeployInput.Proven
	// finish: the operation moves the app to the target (a deploy, not an
	// undo): commit at the cutover, adopt the config, prune. from is the
	// release active when planned.
	finish    bool
	from      string
	retention *Retention
}

// converge is the shared core: start what is missing, cut over, stop the
// rest, singletons stop-first, monitor, drain, activate.
//
// A routed singleton (a stop-first web) cannot start before the cutover:
// its old instance must be gone first. The cutover routes its service to
// nothing (the proxy holds its requests, up to http.hold_timeout), and its
// singleton step, right after the cutover, drains and stops the old
// instance, starts the new one, waits for its health check and routes it.
func converge(app string, t Target, observed []runtime.Instance, specs map[string]*spec.Spec, o convergeOptions) []Step {
	var steps []Step
	svcs := t.Spec.ServiceNames()

	// What of the target runs, and what is in the way.
	running := map[string][]runtime.Instance{} // service → target instances that run
	var dead []string                          // target instances that exited: removed, then started again
	var oldWorkers []string
	var oldWeb []runtime.Instance
	oldSingleton := map[string][]runtime.Instance{}
	var tasks []string
	for _, in := range observed {
		switch in.Kind {
		case runtime.KindAccessory:
			continue
		case runtime.KindTask:
			tasks = append(tasks, in.ID)
			continue
		}
		svc := t.Spec.Services[in.Service]
		keep := in.Release == t.Release && svc != nil && in.Index >= 1 && in.Index <= t.Replicas(in.Service)
		switch {
		case keep && in.State == runtime.StateExited:
			dead = append(dead, in.ID)
		case keep:
			running[in.Service] = append(running[in.Service], in)
		case svc != nil && svc.Singleton:
			oldSingleton[in.Service] = append(oldSingleton[in.Service], in)
		case isRouted(in, t, specs):
			oldWeb = append(oldWeb, in)
		default:
			oldWorkers = append(oldWorkers, in.ID)
		}
	}
	sort.Strings(tasks)
	sort.Strings(dead)
	if len(tasks)+len(dead) > 0 {
		steps = append(steps, Step{Kind: StepStop, IDs: append(tasks, dead...)})
	}

	missing := func(svc string) []int {
		have := map[int]bool{}
		for _, in := range running[svc] {
			have[in.Index] = true
		}
		var idx []int
		for i := 1; i <= t.Replicas(svc); i++ {
			if !have[i] {
				idx = append(idx, i)
			}
		}
		return idx
	}

	// Start-first: routed services always before the cutover; the others
	// too in a deploy (all-or-nothing), after it otherwise.
	var before, after []Start
	for _, name := range svcs {
		svc := t.Spec.Services[name]
		if svc.Singleton {
			continue
		}
		idx := missing(name)
		if len(idx) == 0 {
			continue
		}
		st := Start{Service: name, Release: t.Release, Indices: idx, Gate: t.gateFor(svc), Routed: svc.Routed()}
		if o.proven && !svc.Routed() {
			st.Gate = st.Gate.watched(o.monitor)
		}
		if svc.Routed() || o.startFirst {
			before = append(before, st)
		} else {
			after = append(after, st)
		}
	}
	if len(before) > 0 {
		steps = append(steps, Step{Kind: StepStart, Release: t.Release, Starts: before})
	}

	// Singletons, stop-first: at most one instance ever.
	var routedSingles, otherSingles []Step
	var held []string
	keepSingle := map[string]bool{} // singleton services whose running target instance stays
	for _, name := range svcs {
		svc := t.Spec.Services[name]
		if !svc.Singleton {
			continue
		}
		old := idsOf(oldSingleton[name])
		want := t.Replicas(name) > 0
		switch {
		case want && len(running[name]) > 0:
			keepSingle[name] = true
			if len(old) > 0 {
				// The target's singleton runs beside an old one: stop the
				// old one only (cannot happen through moorage, but recover
				// anyway).
				if svc.Routed() {
					routedSingles = append(routedSingles, Step{Kind: StepDrain, IDs: old, Timeout: drainTimeout(t, specs, oldSingleton[name])})
				} else {
					otherSingles = append(otherSingles, Step{Kind: StepStop, IDs: old})
				}
			}
			continue
		case !want && len(old) == 0 && len(running[name]) == 0:
			continue
		}
		if !want {
			old = append(old, idsOf(running[name])...)
		}
		s := Step{Kind: StepSingleton, Release: t.Release, Service: name, IDs: old, Index: 1, SkipStart: !want, Gate: t.gateFor(svc)}
		if svc.Routed() {
			s.Routed = true
			drained := oldSingleton[name]
			if !want { // scaled to 0: the target's own instance drains
				drained = append(slices.Clone(drained), running[name]...)
			}
			s.Timeout = drainTimeout(t, specs, drained)
			if want {
				held = append(held, name)
			}
			routedSingles = append(routedSingles, s)
			continue
		}
		s.Gate = s.Gate.watched(o.monitor)
		otherSingles = append(otherSingles, s)
	}

	// The cutover routes every routed instance of the target that runs by
	// then; each routed singleton step adds its new instance.
	started := map[string]bool{}
	routedIDs := func() []string {
		var ids []string
		for _, name := range svcs {
			svc := t.Spec.Services[name]
			switch {
			case !svc.Routed():
			case svc.Singleton && keepSingle[name]:
				ids = append(ids, idsOf(running[name])...)
			case svc.Singleton && started[name]:
				ids = append(ids, runtime.InstanceID(app, name, t.Release, 1, runtime.KindService))
			case !svc.Singleton:
				for i := 1; i <= t.Replicas(name); i++ {
					ids = append(ids, runtime.InstanceID(app, name, t.Release, i, runtime.KindService))
				}
			}
		}
		return ids
	}
	steps = append(steps, Step{Kind: StepCutover, Release: t.Release, Routes: routedIDs(), Held: held, Commit: o.finish})
	for _, s := range routedSingles {
		if s.Kind == StepSingleton && !s.SkipStart {
			started[s.Service] = true
			s.Routes = routedIDs()
		}
		steps = append(steps, s)
	}

	sort.Strings(oldWorkers)
	if len(oldWorkers) > 0 {
		steps = append(steps, Step{Kind: StepStop, IDs: oldWorkers})
	}
	steps = append(steps, otherSingles...)
	if len(after) > 0 {
		steps = append(steps, Step{Kind: StepStart, Release: t.Release, Starts: after})
	}
	if o.monitor > 0 {
		steps = append(steps, Step{Kind: StepMonitor, Release: t.Release, Duration: o.monitor})
	}
	// Scale-down within the target (replicas beyond the formation) and the
	// old web instances: drained, then stopped.
	if len(oldWeb) > 0 {
		steps = append(steps, Step{Kind: StepDrain, IDs: idsOf(oldWeb), Timeout: drainTimeout(t, specs, oldWeb)})
	}
	steps = append(steps, Step{Kind: StepActivate, Release: t.Release})
	if o.finish {
		if o.from != t.Release {
			steps = append(steps, Step{Kind: StepAdopt, Release: t.Release})
		}
		keep := t.Spec.Deploy.KeepReleases
		if keep <= 0 {
			keep = spec.DefaultKeepReleases
		}
		prune := Step{Kind: StepPrune, Release: t.Release, Keep: keep}
		if o.retention != nil {
			prune.Prune = []string{}
			for _, r := range pruneList(o.retention) {
				prune.Prune = append(prune.Prune, r.ID())
			}
		}
		steps = append(steps, prune)
	}
	return steps
}

// idsOf returns the instances' IDs, sorted.
func idsOf(ins []runtime.Instance) []string {
	ids := make([]string, 0, len(ins))
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	sort.Strings(ids)
	return ids
}

// drainTimeout is how long the old instances ins get to finish their
// in-flight requests: the longest of their services' drain timeouts. The
// release being converged to decides: its http.drain_timeout for the
// service, else its deploy.drain_timeout; a service it does not have takes
// the values of the instance's own release.
func drainTimeout(t Target, specs map[string]*spec.Spec, ins []runtime.Instance) time.Duration {
	var longest time.Duration
	for _, in := range ins {
		sp := t.Spec
		if sp.Services[in.Service] == nil && specs[in.Release] != nil {
			sp = specs[in.Release]
		}
		d := sp.Deploy.DrainTimeout
		if svc := sp.Services[in.Service]; svc != nil && svc.HTTP != nil && svc.HTTP.DrainTimeout > 0 {
			d = svc.HTTP.DrainTimeout
		}
		if d <= 0 {
			d = spec.DefaultDrainTimeout
		}
		longest = max(longest, d)
	}
	if longest <= 0 {
		longest = spec.DefaultDrainTimeout
	}
	return longest
}

// isRouted reports whether an instance the target does not keep belongs to
// a routed service: by its own release's spec when known, else the
// target's, else by the name "web".
func isRouted(in runtime.Instance, t Target, specs map[string]*spec.Spec) bool {
	if sp := specs[in.Release]; sp != nil {
		if svc := sp.Services[in.Service]; svc != nil {
			return svc.Routed()
		}
	}
	if svc := t.Spec.Services[in.Service]; svc != nil {
		return svc.Routed()
	}
	return in.Service == "web"
}

func runningRouted(t Target, observed []runtime.Instance) []string {
	var ids []string
	for _, in := range observed {
		svc := t.Spec.Services[in.Service]
		if in.Kind == runtime.KindService && in.Release == t.Release && svc != nil && svc.Routed() &&
			in.State != runtime.StateExited && in.Index >= 1 && in.Index <= t.Replicas(in.Service) {
			ids = append(ids, in.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// gateFor says when an instance of svc is ready: the health check its spec
// gives, else the image's own (docker HEALTHCHECK, for as long as that
// check's settings may take), else the check a routed service gets by
// default (TCP connect), else having stayed up min_ready.
func (t Target) gateFor(svc *spec.Service) Gate {
	own := gateFor(svc)
	if svc.Health != nil && !svc.Health.Implied {
		return own
	}
	switch {
	case t.ArtifactPending && t.Spec.Runtime == spec.RuntimeDocker:
		// Built by this deploy: the start step resolves it (Gate.Resolve).
		return Gate{Kind: "image", Interval: spec.DefaultHealthInterval, Else: &own}
	case t.ImageHealthcheck:
		return Gate{Kind: "image", Interval: spec.DefaultHealthInterval}.Resolve(true, t.ImageHealthWait)
	}
	return own
}

// imageHealthWait is how long an image's HEALTHCHECK may take when its
// artifact does not say (releases made before it did): Docker's defaults
// (30s interval and timeout, 3 retries) and some slack.
const imageHealthWait = 250 * time.Second

func gateFor(svc *spec.Service) Gate {
	h := svc.Health
	switch {
	case h != nil && h.Path != "":
		return Gate{Kind: "http", Path: h.Path, Interval: h.Interval, Within: h.StartPeriod}
	case h != nil && len(h.Command) > 0:
		return Gate{Kind: "command", Command: h.Command, Interval: h.Interval, Within: h.StartPeriod}
	case h != nil && h.TCP:
		return Gate{Kind: "tcp", Interval: h.Interval, Within: h.StartPeriod}
	}
	return Gate{Kind: "min_ready", Within: svc.MinReady}
}

// planAccessories starts accessories that do not run. A deploy (restart
// true) also restarts one whose spec changed; reverts and recovery never
// restart a running accessory.
func planAccessories(t Target, observed []runtime.Instance, restart bool) []Step {
	var steps []Step
	have := map[string]runtime.Instance{}
	for _, in := range observed {
		if in.Kind == runtime.KindAccessory {
			have[in.Service] = in
		}
	}
	for _, name := range t.Spec.AccessoryNames() {
		in, ok := have[name]
		s := Step{Kind: StepAccessory, Release: t.Release, Name: name}
		switch {
		case t.StoppedAccessories[name] && ok:
			// Stopped, yet something runs: it goes (it was being stopped).
			s.Action, s.Reason = AccessoryStop, "stopped with moorage accessory stop"
		case t.StoppedAccessories[name]:
			s.Action, s.Reason = AccessoryStopped, "moorage accessory start starts it"
		case !ok:
			s.Action = AccessoryStart
		case in.State == runtime.StateExited:
			s.Action, s.Reason = AccessoryStart, "it had exited"
		case restart && in.Hash != t.AccessoryHash[name]:
			s.Action, s.Reason = AccessoryRestart, "its spec changed"
		default:
			s.Action, s.Reason = AccessoryKeep, "running, unchanged"
		}
		steps = append(steps, s)
	}
	return steps
}

func volumeNames(s *spec.Spec) []string {
	set := map[string]bool{}
	for n := range s.Volumes {
		set[n] = true
	}
	for _, a := range s.Accessories {
		for _, v := range a.Volumes {
			if !strings.HasPrefix(v.Name, "/") && !strings.HasPrefix(v.Name, ".") {
				set[v.Name] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
