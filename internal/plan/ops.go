package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
)

// Scale plans `moorage scale`: the active release converged in place to
// its new formation (in.Target's), as an operation that finishes (its
// cutover is the commit point, then prune).
func Scale(in ConvergeInput) *Plan {
	in.Kind, in.Finish = "scale", true
	return Converge(in)
}

// StopApp plans `moorage stop`: the stopped page first (recorded, so a
// crash mid-way recovers the app as stopped), then every service instance
// goes as a scale to 0 takes it (drained, singletons stop-first).
// Accessories keep running. Target's formation is all 0.
func StopApp(in ConvergeInput) *Plan {
	in.Kind = "stop"
	p := Converge(in)
	p.Steps = append([]Step{Maintenance{Release: p.Target, On: true}}, p.Steps...)
	return p
}

// StartApp plans `moorage start`: the active release with its formation,
// health-gated as a scale starts it, and only then the stopped page goes.
func StartApp(in ConvergeInput) *Plan {
	in.Kind = "start"
	p := Converge(in)
	p.Steps = append(p.Steps, Maintenance{Release: p.Target})
	return p
}

// RestoreInput is what Restore decides from.
type RestoreInput struct {
	// Converge is the active release and what runs; its Kind and Finish
	// are set by Restore.
	Converge ConvergeInput
	Backup   string
	// Stop are the instances that mount the restored volume: they stop
	// before the restore and start again after it (none for a database
	// restore, which runs while the app serves).
	Stop []string
}

// Restore plans `moorage backup restore`: stop what mounts the volume,
// restore, then converge back to the active release (which starts them
// again, health-gated).
func Restore(in RestoreInput) *Plan {
	c := in.Converge
	c.Kind, c.Finish = "restore", true
	rel := c.Target.Release
	p := &Plan{App: c.App, Kind: "restore", Target: rel, From: rel}
	if len(in.Stop) > 0 {
		p.Steps = append(p.Steps, Stop{IDs: in.Stop})
	}
	p.Steps = append(p.Steps, RestoreBackup{Release: rel, Backup: in.Backup})
	if len(in.Stop) > 0 {
		c.Observed = withoutIDs(c.Observed, in.Stop)
		p.Steps = append(p.Steps, Converge(c).Steps...)
	}
	return p
}

// withoutIDs drops instances a plan is about to stop from what it sees.
func withoutIDs(in []runtime.Instance, ids []string) []runtime.Instance {
	drop := map[string]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	var out []runtime.Instance
	for _, x := range in {
		if !drop[x.ID] {
			out = append(out, x)
		}
	}
	return out
}

// AccessoryOpInput is what AccessoryOp decides from.
type AccessoryOpInput struct {
	App, Release, Name string
	Action             string // AccessoryStop, AccessoryStart, AccessoryRemove, AccessoryRestart
	Owner              string
	// Volumes are the accessory's volumes that --volumes deletes with it
	// (remove only; those no service of the active release mounts).
	Volumes []string
}

// AccessoryOp plans `moorage accessory stop|start|remove`.
func AccessoryOp(in AccessoryOpInput) *Plan {
	p := &Plan{App: in.App, Kind: "accessory " + in.Action, Target: in.Release, From: in.Release}
	p.Steps = append(p.Steps, Accessory{Release: in.Release, Name: in.Name, Action: in.Action, Reason: "asked by " + in.Owner})
	if in.Action == AccessoryRemove && len(in.Volumes) > 0 {
		p.Steps = append(p.Steps, DeleteVolumes{Release: in.Release, Volumes: in.Volumes})
	}
	return p
}

// RestartAccessory plans `moorage accessory restart`.
func RestartAccessory(app, release, name, owner string) *Plan {
	return &Plan{App: app, Kind: "accessory restart", Target: release, From: release, Steps: []Step{
		Accessory{Release: release, Name: name, Action: AccessoryRestart, Reason: "asked by " + owner},
	}}
}

// DestroyInput is what Destroy decides from.
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

// Destroy plans `moorage apps destroy`: the proxy stops serving the
// app first, then its service instances and accessories stop, its
// artifacts go, with --volumes its volumes and backups, and last its
// records. Every step is idempotent: a destroy a crash interrupted is
// finished by running it again.
func Destroy(in DestroyInput) *Plan {
	p := &Plan{App: in.App, Kind: "destroy", From: in.Active}
	hosts := append([]string(nil), in.Hosts...)
	sort.Strings(hosts)
	p.Steps = append(p.Steps, Unroute{Hosts: hosts})
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
		p.Steps = append(p.Steps, Stop{IDs: svcs})
	}
	if len(accs) > 0 {
		p.Steps = append(p.Steps, Stop{IDs: accs})
	}
	if len(in.Artifacts) > 0 {
		p.Steps = append(p.Steps, RemoveArtifacts{Releases: in.Artifacts})
	}
	vols := append([]string(nil), in.Volumes...)
	sort.Strings(vols)
	backups := append([]string(nil), in.Backups...)
	sort.Strings(backups)
	forget := Forget{App: in.App}
	if in.DeleteData {
		p.Steps = append(p.Steps, DeleteVolumes{Volumes: vols, All: true})
		if len(backups) > 0 {
			p.Steps = append(p.Steps, DeleteBackups{IDs: backups})
		}
	} else {
		forget.KeepData = true
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
