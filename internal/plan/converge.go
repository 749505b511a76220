package plan

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// ConvergeInput is what Converge decides from.
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
	// Warm is the release whose web instances run warm, unrouted, within
	// their deploy.keep_warm (the release the active one replaced): they
	// are left running. "" stops every old web instance.
	Warm string
}

// Converge plans how to bring what runs to the target release with the
// least disruption: used to revert a deploy (the monitor saw the new release
// fail), to finish or undo a deploy interrupted by a server crash, and to
// restore instances that died while nobody watched. Web instances of the
// target that run already are routed first; missing ones start health-gated;
// the rest of the target's services start after the cutover. A nil Target
// removes every service instance of the app.
func Converge(in ConvergeInput) *Plan {
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
			p.Steps = append(p.Steps, Stop{IDs: ids})
		}
		return p
	}
	t := *in.Target
	if in.Stopped {
		t.Formation = StoppedFormation(t.Spec)
	}
	p.Target = t.Release
	p.Steps = append(p.Steps, Prepare{Release: t.Release, Volumes: VolumeNames(t.Spec)})
	p.Steps = append(p.Steps, planAccessories(t, in.Observed, false)...)
	if in.Unrouted {
		if routes := runningRouted(t, in.Observed); len(routes) > 0 {
			p.Steps = append(p.Steps, Route{Release: t.Release, Routes: routes})
		}
	}
	warm := in.Warm
	if in.Stopped {
		warm = ""
	}
	p.Steps = append(p.Steps, converge(in.App, t, in.Observed, in.Specs, convergeOptions{finish: in.Finish, from: in.From, retention: in.Retention, keepWarm: warm})...)
	return p
}

type convergeOptions struct {
	startFirst bool          // start every non-singleton service before cutover (deploy)
	monitor    time.Duration // monitor window after cutover
	proven     bool          // the target served before: its unrouted services start after the cutover (DeployInput.Proven)
	// finish: the operation moves the app to the target (a deploy, not an
	// undo): commit at the cutover, adopt the config, prune. from is the
	// release active when planned.
	finish    bool
	from      string
	retention *Retention
	// keepWarm: the release whose old web instances that run are left
	// running, unrouted; with warmFor > 0 (a deploy) a KeepWarm step says
	// so, else they are left as they are (they were kept warm before).
	keepWarm string
	warmFor  time.Duration
	// serveWarm: a release whose warm web instances may serve the target
	// at once (ServeWarm, DeployInput.Source).
	serveWarm string
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
	var oldWeb, warm []runtime.Instance
	oldSingleton := map[string][]runtime.Instance{}
	lost := map[string][]runtime.Instance{} // singleton instances on a machine that is down
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
		case svc != nil && svc.Singleton && in.Unreachable && !(keep && in.State != runtime.StateExited):
			// Whether it still runs cannot be known: it is neither
			// waited for nor replaced (the target's own one that runs is
			// kept, as any other).
			lost[in.Service] = append(lost[in.Service], in)
		case keep && in.State == runtime.StateExited:
			dead = append(dead, in.ID)
		case keep:
			running[in.Service] = append(running[in.Service], in)
		case svc != nil && svc.Singleton:
			oldSingleton[in.Service] = append(oldSingleton[in.Service], in)
		case isRouted(in, t, specs) && o.keepWarm != "" && in.Release == o.keepWarm && in.Release != t.Release &&
			in.State != runtime.StateExited && (o.warmFor > 0 || !o.startFirst):
			warm = append(warm, in)
		case isRouted(in, t, specs):
			oldWeb = append(oldWeb, in)
		default:
			oldWorkers = append(oldWorkers, in.ID)
		}
	}
	sort.Strings(tasks)
	sort.Strings(dead)
	if len(tasks)+len(dead) > 0 {
		steps = append(steps, Stop{IDs: append(tasks, dead...)})
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
	// too in a deploy (all-or-nothing), after it otherwise. A proven
	// release's (a rollback's) other services start right after the
	// cutover instead (cutBeside): traffic moves as soon as its web is
	// healthy, and they still start beside the old ones, which stop only
	// once they passed their whole gate.
	var before, cutBeside, after []ServiceStart
	for _, name := range svcs {
		svc := t.Spec.Services[name]
		if svc.Singleton {
			continue
		}
		idx := missing(name)
		if len(idx) == 0 {
			continue
		}
		st := ServiceStart{Service: name, Release: t.Release, Indices: idx, Gate: t.gateFor(svc), Routed: svc.Routed()}
		switch {
		case svc.Routed():
			before = append(before, st)
		case o.startFirst && o.proven:
			cutBeside = append(cutBeside, st)
		case o.startFirst:
			before = append(before, st)
		default:
			after = append(after, st)
		}
	}
	if o.serveWarm != "" {
		if s, ok := serveWarm(t, o.serveWarm, observed); ok {
			steps = append(steps, s)
		}
	}
	if len(before) > 0 {
		steps = append(steps, Start{Release: t.Release, Starts: before})
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
					routedSingles = append(routedSingles, Drain{IDs: old, Timeout: drainTimeout(t, specs, oldSingleton[name])})
				} else {
					otherSingles = append(otherSingles, Stop{IDs: old})
				}
			}
			continue
		case !want && len(old) == 0 && len(running[name]) == 0 && len(lost[name]) == 0:
			continue
		}
		if !want {
			old = append(old, idsOf(running[name])...)
		}
		s := Singleton{Release: t.Release, Service: name, Old: old, Index: 1, SkipStart: !want, Gate: t.gateFor(svc)}
		if l := lost[name]; len(l) > 0 {
			// An instance of it is on a machine that is down: no new one
			// starts (a second must never run), and the rest of the plan
			// goes on. The lost one is told to stop when its machine is
			// back, not waited for.
			s.SkipStart = true
			for _, in := range sortedByID(l) {
				s.Lost = append(s.Lost, LostInstance{ID: in.ID, Node: in.Node})
			}
			want = false
		}
		if svc.Routed() {
			s.Routed = true
			drained := oldSingleton[name]
			if !want { // scaled to 0: the target's own instance drains
				drained = append(slices.Clone(drained), running[name]...)
			}
			s.Drain = drainTimeout(t, specs, drained)
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
	steps = append(steps, Cutover{Release: t.Release, Routes: routedIDs(), Held: held, Commit: o.finish})
	for _, s := range routedSingles {
		if single, ok := s.(Singleton); ok && !single.SkipStart {
			started[single.Service] = true
			single.Routes = routedIDs()
			s = single
		}
		steps = append(steps, s)
	}

	if len(cutBeside) > 0 {
		steps = append(steps, Start{Release: t.Release, Starts: cutBeside})
	}
	sort.Strings(oldWorkers)
	if len(oldWorkers) > 0 {
		steps = append(steps, Stop{IDs: oldWorkers})
	}
	steps = append(steps, otherSingles...)
	if len(after) > 0 {
		steps = append(steps, Start{Release: t.Release, Starts: after})
	}
	if o.monitor > 0 {
		steps = append(steps, Monitor{Release: t.Release, For: o.monitor})
	}
	// Scale-down within the target (replicas beyond the formation) and the
	// old web instances: drained, then stopped.
	if len(oldWeb) > 0 {
		steps = append(steps, Drain{IDs: idsOf(oldWeb), Timeout: drainTimeout(t, specs, oldWeb)})
	}
	if len(warm) > 0 && o.warmFor > 0 {
		steps = append(steps, KeepWarm{Release: o.keepWarm, IDs: idsOf(warm), For: o.warmFor})
	}
	steps = append(steps, Activate{Release: t.Release})
	if o.finish {
		if o.from != t.Release {
			steps = append(steps, Adopt{Release: t.Release})
		}
		keep := t.Spec.Deploy.KeepReleases
		if keep <= 0 {
			keep = spec.DefaultKeepReleases
		}
		prune := Prune{Release: t.Release, Keep: keep}
		if o.retention != nil {
			prune.Releases = []string{}
			for _, r := range PruneList(o.retention) {
				prune.Releases = append(prune.Releases, r.ID())
			}
		}
		steps = append(steps, prune)
	}
	return steps
}

// serveWarm plans a ServeWarm step from source's web instances that still
// run: only when every routed service of the target has at least one (a
// service left out would have no instance to serve it) and none is a
// singleton (a stop-first web has no warm instance: it never runs twice).
func serveWarm(t Target, source string, observed []runtime.Instance) (ServeWarm, bool) {
	s := ServeWarm{Release: t.Release, Source: source}
	for _, name := range t.Spec.ServiceNames() {
		svc := t.Spec.Services[name]
		if !svc.Routed() || t.Replicas(name) == 0 {
			continue
		}
		if svc.Singleton {
			return s, false
		}
		var ids []string
		for _, in := range observed {
			if in.Kind == runtime.KindService && in.Release == source && in.Service == name &&
				in.State != runtime.StateExited && in.Index >= 1 {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) == 0 {
			return s, false
		}
		sort.Strings(ids)
		s.Services = append(s.Services, WarmService{Service: name, IDs: ids, Gate: t.gateFor(svc)})
	}
	return s, len(s.Services) > 0
}

// sortedByID returns a copy of ins sorted by ID.
func sortedByID(ins []runtime.Instance) []runtime.Instance {
	out := slices.Clone(ins)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
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
		s := Accessory{Release: t.Release, Name: name}
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

// VolumeNames are the named volumes of s: its own and its accessories'.
func VolumeNames(s *spec.Spec) []string {
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
