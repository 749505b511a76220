package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
)

// Maintenance step actions.
const (
	MaintenanceOn  = "on"
	MaintenanceOff = "off"
)

// opString renders the steps of stop, start and destroy plans.
func (s Step) opString() string {
	switch s.Kind {
	case StepMaintenance:
		if s.Action == MaintenanceOn {
			return "maintenance on: the proxy shows the stopped page (recorded first: the app stays stopped across restarts and deploys are refused)"
		}
		return "maintenance off: the proxy serves the app again"
	case StepUnroute:
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
	case StepArtifacts:
		return "remove the artifacts (release directories, images) of " + listOrNone(s.IDs)
	case StepVolumes:
		out := "delete volumes " + listOrNone(s.Volumes) + " and their data"
		if s.Action == "all" {
			out += ", and the rest of the app's data a runtime keeps (process: its accessories' working directories)"
		}
		return out
	case StepBackups:
		return "delete backups " + listOrNone(s.IDs) + " (files and records)"
	case StepForget:
		out := fmt.Sprintf("forget %s: its releases, deploys, config and secrets, instance records and events (the audit keeps this destroy)", s.Name)
		if s.Reason != "" {
			out += "; " + s.Reason
		}
		return out
	}
	return string(s.Kind)
}

// PlanStop plans `moorage stop`: the stopped page first (recorded, so a
// crash mid-way recovers the app as stopped), then every service instance
// goes as a scale to 0 takes it (drained, singletons stop-first).
// Accessories keep running. Target's formation is all 0.
func PlanStop(in ConvergeInput) *Plan {
	in.Kind = "stop"
	p := PlanConverge(in)
	p.Steps = append([]Step{{Kind: StepMaintenance, Release: p.Target, Action: MaintenanceOn}}, p.Steps...)
	return p
}

// PlanStart plans `moorage start`: the active release with its formation,
// health-gated as a scale starts it, and only then the stopped page goes.
func PlanStart(in ConvergeInput) *Plan {
	in.Kind = "start"
	p := PlanConverge(in)
	p.Steps = append(p.Steps, Step{Kind: StepMaintenance, Release: p.Target, Action: MaintenanceOff})
	return p
}

// AccessoryOpInput is what PlanAccessoryOp decides from.
type AccessoryOpInput struct {
	App, Release, Name string
	Action             string // AccessoryStop, AccessoryStart, AccessoryRemove
	Owner              string
	// Volumes are the accessory's volumes that --volumes deletes with it
	// (remove only; those no service of the active release mounts).
	Volumes []string
}

// PlanAccessoryOp plans `moorage accessory stop|start|remove`.
func PlanAccessoryOp(in AccessoryOpInput) *Plan {
	p := &Plan{App: in.App, Kind: "accessory " + in.Action, Target: in.Release, From: in.Release}
	p.Steps = append(p.Steps, Step{Kind: StepAccessory, Release: in.Release, Name: in.Name, Action: in.Action, Reason: "asked by " + in.Owner})
	if in.Action == AccessoryRemove && len(in.Volumes) > 0 {
		p.Steps = append(p.Steps, Step{Kind: StepVolumes, Release: in.Release, Volumes: in.Volumes})
	}
	return p
}

// DestroyInput is what PlanDestroy decides from.
type DestroyInput struct {
	App      string
	Active   string // the active release ("" when none)
	Observed []runtime.Instance
	// Hosts are the hosts of every release of the app ("" the default
	// route).
	Hosts []string
	// Artifacts are the releases whose artifacts still exist, one per
	// artifact.
	Artifacts []string
	Volumes   []string // the app's volumes (every release's)
	Backups   []string // the app's backups
	// DeleteData (--volumes): the volumes and backups are deleted too;
	// otherwise they are kept and the forget step says so.
	DeleteData bool
}

// PlanDestroy plans `moorage apps destroy`: the proxy stops serving the
// app first, then its service instances and accessories stop, its
// artifacts go, with --volumes its volumes and backups, and last its
// records. Every step is idempotent: a destroy a crash interrupted is
// finished by running it again.
func PlanDestroy(in DestroyInput) *Plan {
	p := &Plan{App: in.App, Kind: "destroy", From: in.Active}
	hosts := append([]string(nil), in.Hosts...)
	sort.Strings(hosts)
	p.Steps = append(p.Steps, Step{Kind: StepUnroute, Hosts: hosts})
	var svcs, accs []string
	for _, o := range in.Observed {
		if o.Kind == runtime.KindAccessory {
			accs = append(accs, o.ID)
		} else {
			svcs = append(svcs, o.ID)
		}
	}
	sort.Strings(svcs)
	sort.Strings(accs)
	if len(svcs) > 0 {
		p.Steps = append(p.Steps, Step{Kind: StepStop, IDs: svcs})
	}
	if len(accs) > 0 {
		p.Steps = append(p.Steps, Step{Kind: StepStop, IDs: accs})
	}
	if len(in.Artifacts) > 0 {
		p.Steps = append(p.Steps, Step{Kind: StepArtifacts, IDs: in.Artifacts})
	}
	vols := append([]string(nil), in.Volumes...)
	sort.Strings(vols)
	backups := append([]string(nil), in.Backups...)
	sort.Strings(backups)
	forget := Step{Kind: StepForget, Name: in.App}
	if in.DeleteData {
		p.Steps = append(p.Steps, Step{Kind: StepVolumes, Volumes: vols, Action: "all"})
		if len(backups) > 0 {
			p.Steps = append(p.Steps, Step{Kind: StepBackups, IDs: backups})
		}
	} else {
		forget.Action = "keep"
		var kept []string
		if len(vols) > 0 {
			kept = append(kept, "volumes "+strings.Join(vols, " "))
		}
		if len(backups) > 0 {
			kept = append(kept, fmt.Sprintf("%d backups", len(backups)))
		}
		if len(kept) > 0 {
			forget.Reason = "keeps " + strings.Join(kept, " and ") + " (--volumes deletes them)"
		}
	}
	p.Steps = append(p.Steps, forget)
	return p
}
