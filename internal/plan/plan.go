// Package plan holds every decision of an operation that changes what
// runs. Each planner is a pure function of the desired state (a Target:
// the release to converge to, its spec and formation) and the observed
// state (the instances the runtimes report): it returns a Plan, a list of
// small typed steps with a String() form that tests compare and the
// journal records. The executor (internal/engine) follows a plan step by
// step and decides nothing.
//
// The package imports neither the engine, nor the store, nor a runtime
// implementation: only the spec and the runtime's types.
package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// Plan is what an operation will do, in order. It is the pure result of a
// planner: the executor follows it and makes no decisions.
type Plan struct {
	App    string
	Kind   string // deploy, rollback, config, converge, ...
	Target string // the release it converges to ("" = none: remove everything)
	From   string // the active release when planned
	Steps  []Step
}

// String renders the plan, one numbered step a line; tests compare it and
// the journal records it.
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

// Monitors reports whether p monitors release after its cutover.
func (p *Plan) Monitors(release string) bool {
	for _, s := range p.Steps {
		if m, ok := s.(Monitor); ok && m.Release == release {
			return true
		}
	}
	return false
}

// Quiet reports whether a recovery plan only re-routes what runs (it is
// then not journaled).
func (p *Plan) Quiet() bool {
	for _, s := range p.Steps {
		switch s := s.(type) {
		case Prepare, Route, Cutover, Activate:
		case Accessory:
			if s.Action != AccessoryKeep {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// StoppedAccessories are the accessories p leaves stopped because
// `moorage accessory stop` stopped them.
func (p *Plan) StoppedAccessories() []string {
	var names []string
	for _, s := range p.Steps {
		if a, ok := s.(Accessory); ok && a.Action == AccessoryStopped {
			names = append(names, a.Name)
		}
	}
	return names
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
	// ImageHealthWait is how long it may take (0: ImageHealthWait).
	ImageHealthcheck bool
	ImageHealthWait  time.Duration
	// ArtifactPending: the deploy builds the artifact, so whether it has
	// a HEALTHCHECK is known only then (set by Deploy).
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

// Formation is the replicas of sp's services with the `moorage scale`
// overrides applied.
func Formation(sp *spec.Spec, scale map[string]int) map[string]int {
	out := map[string]int{}
	for name, svc := range sp.Services {
		out[name] = svc.Replicas
		if n, ok := scale[name]; ok {
			if svc.Singleton && n > 1 {
				n = 1
			}
			out[name] = n
		}
	}
	return out
}

// StoppedFormation is a formation of sp with every service at 0.
func StoppedFormation(sp *spec.Spec) map[string]int {
	out := map[string]int{}
	for name := range sp.Services {
		out[name] = 0
	}
	return out
}

// CheckSingletons refuses a plan that would have to replace a singleton
// whose instance runs on a machine that is down (a cluster runtime
// reports it Unreachable): whether it still runs cannot be known, and a
// second one must never start. Refused before anything changes, the old
// release stays as it is; the error names the machine and what to do.
func CheckSingletons(t Target, observed []runtime.Instance) error {
	for _, in := range observed {
		if !in.Unreachable || in.Kind != runtime.KindService || in.Release == t.Release {
			continue
		}
		if svc := t.Spec.Services[in.Service]; svc == nil || !svc.Singleton {
			continue
		}
		return fmt.Errorf("cannot replace the singleton %s: %s runs on node %s, which is down, so whether it still runs cannot be known, and a second one must never start; %s, then deploy again",
			in.Service, in.ID, in.Node, nodeAdvice([]string{in.Node}))
	}
	return nil
}

// Held says which singletons p does not start again because an instance
// of theirs is on a machine that is down (Singleton.Lost), and what the
// user must do; "" when there are none. An undo, revert or recovery that
// holds one completes otherwise; its outcome carries this text.
func (p *Plan) Held() string {
	var parts, nodes []string
	for _, s := range p.Steps {
		single, ok := s.(Singleton)
		if !ok || len(single.Lost) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("the singleton %s of %s was not started again: %s", single.Service, single.Release, lostText(single.Lost)))
		for _, l := range single.Lost {
			if !slices.Contains(nodes, l.Node) {
				nodes = append(nodes, l.Node)
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%s; %s, then deploy or roll back again to start it", strings.Join(parts, "; "), nodeAdvice(nodes))
}

// lostText says where lost instances are and why nothing replaces them.
func lostText(lost []LostInstance) string {
	var where []string
	for _, l := range lost {
		where = append(where, fmt.Sprintf("%s is on node %s", l.ID, orUnknown(l.Node)))
	}
	return strings.Join(where, ", ") + ", which is down, so whether it still runs cannot be known, and a second one must never start"
}

// nodeAdvice is what to do about nodes that are down.
func nodeAdvice(nodes []string) string {
	var back, rm []string
	for _, n := range nodes {
		back = append(back, "node "+orUnknown(n))
		rm = append(rm, "docker node rm --force "+orUnknown(n))
	}
	return fmt.Sprintf("bring %s back, or make sure it is off and remove it from the swarm (%s)", strings.Join(back, " and "), strings.Join(rm, "; "))
}

func orUnknown(node string) string {
	if node == "" {
		return "(unknown)"
	}
	return node
}
