package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/spec"
)

// Kind names what a step does. It is the step's name in the journal (with
// a prefix for undo, revert and recovery plans: "revert:cutover"), and the
// kind the wire form (api.PlanStep) carries: the strings never change.
type Kind string

// Step kinds, in the order a deploy uses them.
const (
	KindBuild     Kind = "build"      // build the target's artifact
	KindPrepare   Kind = "prepare"    // ensure the app's network and volumes
	KindAccessory Kind = "accessory"  // start, keep or restart an accessory
	KindRelease   Kind = "release"    // run a release task in a one-off instance
	KindCheck     Kind = "check"      // run a check in a one-off instance
	KindRoute     Kind = "route"      // route to what already runs (recovery), no health gate
	KindServeWarm Kind = "serve-warm" // route at once to warm web instances running the target's artifact and config (a rollback's)
	KindStart     Kind = "start"      // start instances beside the old ones, health-gated
	KindCutover   Kind = "cutover"    // swap every route of the app at once
	KindStop      Kind = "stop"       // stop (and remove) instances
	KindSingleton Kind = "singleton"  // stop (a routed one: drain first) the old singleton, then start (and route) the new one
	KindMonitor   Kind = "monitor"    // watch the target; a failure rolls back
	KindDrain     Kind = "drain"      // drain and stop the old web instances
	KindKeepWarm  Kind = "keep-warm"  // leave the previous release's web running, unrouted, for deploy.keep_warm
	KindActivate  Kind = "activate"   // finish: the target is the active release
	KindAdopt     Kind = "adopt"      // the app's config follows the target's (after activate)
	KindPrune     Kind = "prune"      // remove the artifacts of releases beyond keep_releases
	KindRestore   Kind = "restore"    // restore a backup into the target's volume or database
	// Steps of stop, start and destroy (ops.go).
	KindMaintenance Kind = "maintenance" // the stopped page on (recorded: the app is stopped) or off
	KindUnroute     Kind = "unroute"     // the proxy stops serving the app's hosts; their certificates go
	KindArtifacts   Kind = "artifacts"   // remove the artifacts (release dirs, images) of releases
	KindVolumes     Kind = "volumes"     // delete volumes and their data
	KindBackups     Kind = "backups"     // delete backups (files and records)
	KindForget      Kind = "forget"      // delete the app's records (the audit keeps its entry)
)

// Step is one step of a plan: a small value of one of the types below.
// The executor finds the handler of its Kind; String is how the plan, the
// journal and the events print it.
type Step interface {
	Kind() Kind
	// ReleaseID is the release the step acts on ("" for none).
	ReleaseID() string
	String() string
}

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

// Build builds the target's artifact.
type Build struct{ Release string }

func (s Build) Kind() Kind        { return KindBuild }
func (s Build) ReleaseID() string { return s.Release }
func (s Build) String() string    { return "build " + s.Release }

// Prepare ensures the app's network and the volumes.
type Prepare struct {
	Release string
	Volumes []string
}

func (s Prepare) Kind() Kind        { return KindPrepare }
func (s Prepare) ReleaseID() string { return s.Release }
func (s Prepare) String() string {
	if len(s.Volumes) == 0 {
		return "prepare: network"
	}
	return "prepare: network, volumes " + strings.Join(s.Volumes, " ")
}

// Accessory starts, keeps, restarts, stops or removes accessory Name.
type Accessory struct {
	Release string
	Name    string
	Action  string // Accessory*
	Reason  string // why (restart, keep)
}

func (s Accessory) Kind() Kind        { return KindAccessory }
func (s Accessory) ReleaseID() string { return s.Release }
func (s Accessory) String() string {
	out := fmt.Sprintf("accessory %s: %s", s.Name, s.Action)
	if s.Reason != "" {
		out += " (" + s.Reason + ")"
	}
	return out
}

// Task runs a release task (or, Check set, a check) in a one-off instance
// of the release.
type Task struct {
	Check   bool
	Release string
	Index   int // 0-based
	Command []string
	Timeout time.Duration
}

func (s Task) Kind() Kind {
	if s.Check {
		return KindCheck
	}
	return KindRelease
}
func (s Task) ReleaseID() string { return s.Release }
func (s Task) String() string {
	return fmt.Sprintf("%s task %d in %s: %s", s.Kind(), s.Index+1, s.Release, strings.Join(s.Command, " "))
}

// ServiceStart is one service's part of a Start step.
type ServiceStart struct {
	Service string
	Release string
	Indices []int
	Gate    Gate
	Routed  bool
}

// Start starts instances beside the old ones, each waiting for its gate.
type Start struct {
	Release string
	Starts  []ServiceStart
}

func (s Start) Kind() Kind        { return KindStart }
func (s Start) ReleaseID() string { return s.Release }
func (s Start) String() string {
	parts := make([]string, len(s.Starts))
	for i, st := range s.Starts {
		parts[i] = fmt.Sprintf("%s %s ×%d %v, %s", st.Service, st.Release, len(st.Indices), st.Indices, st.Gate)
	}
	return "start " + strings.Join(parts, "; ")
}

// WarmService is one routed service's part of a ServeWarm step.
type WarmService struct {
	Service string
	IDs     []string
	Gate    Gate // probed once on each before it is routed
}

// ServeWarm routes every host of the target at once to web instances of
// Source that still run, unrouted (kept warm after the deploy that
// replaced Source: KeepWarm), when the target runs Source's artifact and
// config unchanged (a rollback to it). Each is probed once with its
// service's gate first; those that fail are left out, and if a service
// has none left, the step routes nothing and says so (the target's own
// web instances still start and take over at its cutover). It is not the
// commit point: a failure before the cutover routes the active release
// again.
type ServeWarm struct {
	Release  string // the target
	Source   string
	Services []WarmService
}

func (s ServeWarm) Kind() Kind        { return KindServeWarm }
func (s ServeWarm) ReleaseID() string { return s.Release }
func (s ServeWarm) String() string {
	parts := make([]string, len(s.Services))
	for i, w := range s.Services {
		parts[i] = fmt.Sprintf("%s %s (each probed once: %s)", w.Service, strings.Join(w.IDs, " "), w.Gate)
	}
	return fmt.Sprintf("serve at once from %s's warm web instances (%s runs %s's artifact and config): %s; %s's own take over at its cutover",
		s.Source, s.Release, s.Source, strings.Join(parts, "; "), s.Release)
}

// Route points the proxy at instances of Release that run already
// (recovery), with no health gate and no commit.
type Route struct {
	Release string
	Routes  []string
}

func (s Route) Kind() Kind        { return KindRoute }
func (s Route) ReleaseID() string { return s.Release }
func (s Route) String() string {
	return fmt.Sprintf("route %s to running %s", s.Release, listOrNone(s.Routes))
}

// Cutover swaps every route of the app to Routes at once.
type Cutover struct {
	Release string
	Routes  []string
	// Held are routed singleton services whose requests wait for their
	// singleton step.
	Held []string
	// Commit: this cutover is the operation's commit point: it records
	// the target as the active release, and a failure after it rolls back
	// (undo, revert and recovery cutovers only route, the release they
	// bring back is active again).
	Commit bool
}

func (s Cutover) Kind() Kind        { return KindCutover }
func (s Cutover) ReleaseID() string { return s.Release }
func (s Cutover) String() string {
	out := fmt.Sprintf("cutover: route every host to %s %s", s.Release, listOrNone(s.Routes))
	if len(s.Held) > 0 {
		out += fmt.Sprintf("; requests for %s wait for its singleton step", strings.Join(s.Held, ", "))
	}
	if s.Commit {
		out += fmt.Sprintf("; commit point: %s becomes the active release", s.Release)
	}
	return out
}

// Stop stops and removes instances.
type Stop struct{ IDs []string }

func (s Stop) Kind() Kind        { return KindStop }
func (s Stop) ReleaseID() string { return "" }
func (s Stop) String() string    { return "stop " + listOrNone(s.IDs) }

// Singleton stops the old instances of a singleton service (a routed one
// drained first), then starts the new one: at most one ever runs.
type Singleton struct {
	Release string
	Service string
	Old     []string // the old instances
	Index   int      // the index to start
	// SkipStart: the service has 0 replicas in the target.
	SkipStart bool
	// Routed: a singleton of a routed service (a stop-first web): its old
	// instance, unrouted by the cutover, is drained (up to Drain) before
	// it stops, and the new one is routed (Routes: every routed instance
	// of the target by then, the new one included) once it passes Gate.
	Routed bool
	Drain  time.Duration
	Routes []string
	Gate   Gate // when the new one counts as started
	// Lost are instances of the service on a machine that is down (a
	// cluster runtime reports them Unreachable): whether they still run
	// cannot be known, and a second one must never start, so none starts
	// (SkipStart) and the rest of the plan goes on. Each is told to stop
	// when its machine is back, not waited for. Only undo, revert and
	// recovery plans hold one: a deploy or rollback that would replace it
	// is refused before anything changes (CheckSingletons).
	Lost []LostInstance
}

// LostInstance is an instance on a machine that is down.
type LostInstance struct {
	ID   string
	Node string // the machine (a swarm node's hostname)
}

func (s Singleton) Kind() Kind        { return KindSingleton }
func (s Singleton) ReleaseID() string { return s.Release }
func (s Singleton) String() string {
	stop := "stop nothing running"
	switch {
	case len(s.Old) > 0 && s.Routed:
		stop = fmt.Sprintf("drain (up to %s) and stop %s", s.Drain, strings.Join(s.Old, " "))
	case len(s.Old) > 0:
		stop = "stop " + strings.Join(s.Old, " ")
	}
	if len(s.Lost) > 0 {
		out := fmt.Sprintf("singleton %s: not started again: %s; told to stop when the node is back, not waited for", s.Service, lostText(s.Lost))
		if len(s.Old) > 0 {
			out += "; " + stop
		}
		return out
	}
	if s.SkipStart {
		return fmt.Sprintf("singleton %s: %s (0 replicas in %s)", s.Service, stop, s.Release)
	}
	out := fmt.Sprintf("singleton %s: %s, then start %s [%d], %s", s.Service, stop, s.Release, s.Index, s.Gate)
	if s.Routed {
		out += fmt.Sprintf(", then route every host to %s %s", s.Release, listOrNone(s.Routes))
	}
	return out
}

// Monitor watches Release for a while after its cutover: a crash or a
// failed health check fails the step (and the operation rolls back).
type Monitor struct {
	Release string
	For     time.Duration
}

func (s Monitor) Kind() Kind        { return KindMonitor }
func (s Monitor) ReleaseID() string { return s.Release }
func (s Monitor) String() string    { return fmt.Sprintf("monitor %s for %s", s.Release, s.For) }

// Drain waits for the requests in flight to unrouted instances (up to
// Timeout), then stops them.
type Drain struct {
	IDs     []string
	Timeout time.Duration
}

func (s Drain) Kind() Kind        { return KindDrain }
func (s Drain) ReleaseID() string { return "" }
func (s Drain) String() string {
	return fmt.Sprintf("drain (up to %s) and stop %s", s.Timeout, listOrNone(s.IDs))
}

// KeepWarm leaves the web instances of Release (the release a deploy
// replaced), unrouted since the cutover, running for For
// (deploy.keep_warm): a rollback to Release within that time serves from
// them at once (ServeWarm). The server stops them when For is over, or the
// next operation does.
type KeepWarm struct {
	Release string
	IDs     []string
	For     time.Duration
}

func (s KeepWarm) Kind() Kind        { return KindKeepWarm }
func (s KeepWarm) ReleaseID() string { return s.Release }
func (s KeepWarm) String() string {
	return fmt.Sprintf("keep %s's web warm for %s (deploy.keep_warm), unrouted: %s; a rollback to %s within that time serves from them at once",
		s.Release, spec.FormatDuration(s.For), listOrNone(s.IDs), s.Release)
}

// Activate records Release as the active release.
type Activate struct{ Release string }

func (s Activate) Kind() Kind        { return KindActivate }
func (s Activate) ReleaseID() string { return s.Release }
func (s Activate) String() string    { return "activate " + s.Release }

// Adopt makes the app's config follow Release's.
type Adopt struct{ Release string }

func (s Adopt) Kind() Kind        { return KindAdopt }
func (s Adopt) ReleaseID() string { return s.Release }
func (s Adopt) String() string {
	return fmt.Sprintf("adopt the config of %s for `moorage config` and later deploys", s.Release)
}

// Prune removes the artifacts of the releases beyond keep_releases, and
// old logs.
type Prune struct {
	Release string
	Keep    int // the releases that served kept (keep_releases)
	// Releases whose artifacts it removes, decided at planning
	// (PruneList); nil when the plan was made without the app's history:
	// then it removes none (`moorage prune` does later).
	Releases []string
}

func (s Prune) Kind() Kind        { return KindPrune }
func (s Prune) ReleaseID() string { return s.Release }
func (s Prune) String() string {
	text := fmt.Sprintf("prune the artifacts of releases beyond keep_releases (%d)", s.Keep)
	if s.Releases == nil {
		return text + ": none decided (planned without the app's history; `moorage prune` removes them)"
	}
	return text + ": " + listOrNone(s.Releases)
}

// RestoreBackup restores backup Backup into Release's volume or database.
type RestoreBackup struct {
	Release string
	Backup  string
}

func (s RestoreBackup) Kind() Kind        { return KindRestore }
func (s RestoreBackup) ReleaseID() string { return s.Release }
func (s RestoreBackup) String() string    { return "restore backup " + s.Backup }

// Maintenance turns the stopped page on (recorded first: the app stays
// stopped across restarts) or off.
type Maintenance struct {
	Release string
	On      bool
}

func (s Maintenance) Kind() Kind        { return KindMaintenance }
func (s Maintenance) ReleaseID() string { return s.Release }
func (s Maintenance) String() string {
	if s.On {
		return "maintenance on: the proxy shows the stopped page (recorded first: the app stays stopped across restarts and deploys are refused)"
	}
	return "maintenance off: the proxy serves the app again"
}

// Unroute makes the proxy stop serving Hosts ("" the default route); their
// TLS sites and certificates go.
type Unroute struct{ Hosts []string }

func (s Unroute) Kind() Kind        { return KindUnroute }
func (s Unroute) ReleaseID() string { return "" }
func (s Unroute) String() string {
	hosts := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		if h == "" {
			h = "the default route"
		}
		hosts[i] = h
	}
	what := "(no host)"
	if len(hosts) > 0 {
		what = strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("unroute: the proxy stops serving %s (answered as an unknown host); their TLS sites and certificates are deleted", what)
}

// RemoveArtifacts removes the artifacts of Releases, one per artifact.
type RemoveArtifacts struct{ Releases []string }

func (s RemoveArtifacts) Kind() Kind        { return KindArtifacts }
func (s RemoveArtifacts) ReleaseID() string { return "" }
func (s RemoveArtifacts) String() string {
	return "remove the artifacts (release directories, images) of " + listOrNone(s.Releases)
}

// DeleteVolumes deletes volumes and their data; All (a destroy) also the
// rest of the app's data a runtime keeps.
type DeleteVolumes struct {
	Release string
	Volumes []string
	All     bool
}

func (s DeleteVolumes) Kind() Kind        { return KindVolumes }
func (s DeleteVolumes) ReleaseID() string { return s.Release }
func (s DeleteVolumes) String() string {
	out := "delete volumes " + listOrNone(s.Volumes) + " and their data"
	if s.All {
		out += ", and the rest of the app's data a runtime keeps (process: its accessories' working directories)"
	}
	return out
}

// DeleteBackups deletes backups, files and records.
type DeleteBackups struct{ IDs []string }

func (s DeleteBackups) Kind() Kind        { return KindBackups }
func (s DeleteBackups) ReleaseID() string { return "" }
func (s DeleteBackups) String() string {
	return "delete backups " + listOrNone(s.IDs) + " (files and records)"
}

// Forget deletes app App's records; KeepData keeps its volumes and
// backups (Reason says which).
type Forget struct {
	App      string
	KeepData bool
	Reason   string
}

func (s Forget) Kind() Kind        { return KindForget }
func (s Forget) ReleaseID() string { return "" }
func (s Forget) String() string {
	out := fmt.Sprintf("forget %s: its releases, deploys, config and secrets, instance records and events (the audit keeps this destroy)", s.App)
	if s.Reason != "" {
		out += "; " + s.Reason
	}
	return out
}
