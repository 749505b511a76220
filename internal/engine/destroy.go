package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// DestroyRequest asks to destroy an app (`moorage apps destroy`).
type DestroyRequest struct {
	App, Owner string
	// Volumes deletes the app's volumes and backups too; without it they
	// are kept, and the output says where.
	Volumes bool
	// Yes confirms; without it only a dry run is allowed.
	Yes    bool
	Wait   bool
	DryRun bool
}

// errDestroying refuses an operation on an app a destroy began.
func errDestroying(app, what string) error {
	return fmt.Errorf("%s %s: the app is being destroyed (a destroy was interrupted): finish it with `moorage apps destroy %s --yes`", what, app, app)
}

// refuseDestroying is an operation's check that refuses it while a destroy
// of app is unfinished.
func (e *Engine) refuseDestroying(app, what string) func(context.Context) error {
	return func(ctx context.Context) error {
		m, err := e.MaintenanceOf(ctx, app)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if m != nil && m.Destroying {
			return errDestroying(app, what)
		}
		return nil
	}
}

// Destroy stops and removes everything of an app: the proxy stops serving
// its hosts (answered as unknown hosts) and their certificates go, its
// service instances and accessories stop and are removed, its artifacts
// are deleted, and its records (releases, deploys, config and secrets,
// events) are forgotten; a later deploy of the name starts from scratch.
// Its volumes and backups are kept unless req.Volumes. It takes the app's
// lock: refused while another operation holds it (or waits, with Wait).
//
// The app is marked as being destroyed before anything is removed: a
// server that dies mid-way starts nothing of it again, every operation but
// destroy is refused, and running destroy again finishes the job (every
// step is idempotent). The audit keeps the entry of the destroy
// (apiserver).
func (e *Engine) Destroy(req DestroyRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.operate(ctx, op, operation{
			App: req.App, Owner: req.Owner, Lock: "destroy", Wait: req.Wait, DryRun: req.DryRun, NeedApp: true,
			LoadErr: func(err error) error {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("app %q does not exist on this server (moorage apps lists them): %w", req.App, store.ErrNotFound)
				}
				return err
			},
			Own: func(ctx context.Context, op *Op, l *loaded) (string, error) {
				return e.destroy(ctx, op, req, l)
			},
		})
	})
}

// destroyInput gathers what a destroy of app removes.
func (e *Engine) destroyInput(ctx context.Context, app string, active *store.Release, deleteData bool) (plan.DestroyInput, map[string]*store.Release, error) {
	in := plan.DestroyInput{App: app, Active: storeID(active), DeleteData: deleteData}
	observed, err := e.observe(ctx, app)
	if err != nil {
		return in, nil, err
	}
	in.Observed = observed
	rels, err := e.st.ListReleases(ctx, app)
	if err != nil {
		return in, nil, err
	}
	hosts, vols, refs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	byID := map[string]*store.Release{}
	sort.Slice(rels, func(i, j int) bool { return rels[i].Version < rels[j].Version })
	for _, r := range rels {
		byID[r.ID()] = r
		for _, h := range httpHostsOf(r.Spec) {
			hosts[h] = true
		}
		for _, v := range plan.VolumeNames(r.Spec) {
			vols[v] = true
		}
		if r.Artifact.Ref == "" || refs[r.Artifact.Ref] {
			continue
		}
		rt, err := e.Runtime(r.Artifact.Runtime)
		if err != nil {
			continue
		}
		if ok, err := rt.ArtifactExists(ctx, r.Artifact); err == nil && ok {
			refs[r.Artifact.Ref] = true
			in.Artifacts = append(in.Artifacts, r.ID())
		}
	}
	for h := range hosts {
		in.Hosts = append(in.Hosts, h)
	}
	for v := range vols {
		in.Volumes = append(in.Volumes, v)
	}
	sort.Strings(in.Hosts)
	sort.Strings(in.Volumes)
	bs, err := e.st.ListBackups(ctx, app)
	if err != nil {
		return in, nil, err
	}
	for _, b := range bs {
		in.Backups = append(in.Backups, b.ID)
	}
	return in, byID, nil
}

func (e *Engine) destroy(ctx context.Context, op *Op, req DestroyRequest, l *loaded) (string, error) {
	app := req.App
	in, rels, err := e.destroyInput(ctx, app, l.Active, req.Volumes)
	if err != nil {
		return store.DeployFailed, fmt.Errorf("destroy %s: %w", app, err)
	}
	p := plan.Destroy(in)
	if req.DryRun || !req.Yes {
		op.emit(Event{Type: EventInfo, Text: fmt.Sprintf("dry run of a destroy: %s; nothing changes", app)})
		op.emit(planEvent("", p))
		if !req.Yes && !req.DryRun {
			return store.DeployFailed, fmt.Errorf("destroying %s removes what the plan above says and cannot be undone: run `moorage apps destroy %s --yes`", app, app)
		}
		return StatusPlanned, nil
	}
	// Recorded before anything goes: a crash from here on leaves an app
	// that recovery starts nothing of, and that destroy finishes.
	if err := e.SetMaintenance(ctx, app, &Maintenance{Message: app + " is being removed.", Stopped: true, Destroying: true}); err != nil {
		return store.DeployFailed, err
	}
	op.emit(Event{Type: EventInfo, Text: fmt.Sprintf("destroy %s (active: %s), asked by %s", app, orNone(in.Active), req.Owner)})
	op.emit(planEvent("", p))
	// Executed by the same handlers as any plan, with no journal of its
	// own: its record is the audit's entry.
	r := &execution{e: e, op: op, rel: &store.Release{App: app}, known: rels, routed: map[string]string{}, prefix: "destroy:", unjournaled: true}
	if err := r.steps(ctx, p.Steps); err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrInterrupted) {
			return "interrupted", ErrInterrupted
		}
		var se *stepError
		if !errors.As(err, &se) {
			return store.DeployFailed, fmt.Errorf("destroy %s: %w", app, err)
		}
		e.log.Error("destroy failed", "app", app, "step", se.step.Kind(), "err", se.err)
		return store.DeployFailed, fmt.Errorf("destroy %s: %s: %v; what is done stays done, and %s starts nothing again: run `moorage apps destroy %s --yes` to finish", app, se.step.Kind(), se.err, app, app)
	}
	op.emit(Event{Type: EventInfo, Text: e.destroySummary(ctx, app, in)})
	e.log.Info("app destroyed", "app", app, "owner", req.Owner, "volumes", req.Volumes)
	return store.DeploySucceeded, nil
}

// destroySummary says what a destroy deleted and what it kept, and how to
// delete what it kept.
func (e *Engine) destroySummary(ctx context.Context, app string, in plan.DestroyInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is destroyed: %d instances, %d artifacts, its routes and certificates, releases, deploys and config deleted", app, len(in.Observed), len(in.Artifacts))
	if in.DeleteData {
		if len(in.Volumes) > 0 {
			fmt.Fprintf(&b, "; deleted volumes %s", strings.Join(in.Volumes, " "))
		}
		if len(in.Backups) > 0 {
			fmt.Fprintf(&b, "; deleted backups %s", strings.Join(in.Backups, " "))
		}
		return b.String()
	}
	if len(in.Volumes) > 0 {
		var where []string
		for _, v := range in.Volumes {
			where = append(where, v+" ("+e.volumeWhere(ctx, app, v)+")")
		}
		fmt.Fprintf(&b, "; kept volumes %s", strings.Join(where, ", "))
	}
	if len(in.Backups) > 0 {
		fmt.Fprintf(&b, "; kept %d backups in %s", len(in.Backups), filepath.Join(e.dataDir, "backups", app))
	}
	if len(in.Volumes)+len(in.Backups) > 0 {
		fmt.Fprintf(&b, ". A new deploy of %s finds them again; to delete them, `moorage apps destroy %s --volumes --yes` after such a deploy, or remove them by hand (docker volume rm, rm -r)", app, app)
	}
	return b.String()
}

// volumeWhere is where a volume of app lives: its host directory, and its
// runtime.
func (e *Engine) volumeWhere(ctx context.Context, app, name string) string {
	var out []string
	for _, rt := range e.runtimes {
		if p, err := rt.VolumePath(ctx, app, name); err == nil && p != "" {
			if _, err := os.Stat(p); err == nil {
				out = append(out, rt.Name()+": "+p)
			}
		}
	}
	if len(out) == 0 {
		return "not found"
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// The handlers of destroy's steps (handlers.go). Every one is idempotent:
// a destroy a crash interrupted is finished by running it again.

func (r *execution) unroute(ctx context.Context, s plan.Unroute, out *stepOutput) error {
	e, app := r.e, r.rel.App
	e.proxy.RemoveApp(app)
	e.removeFront(app)
	out.Printf("the proxy no longer serves %s", app)
	if e.certs != nil {
		gone, err := e.certs.DeleteCertificates(s.Hosts)
		for _, g := range gone {
			out.Printf("deleted certificate %s", g)
		}
		return err
	}
	return nil
}

func (r *execution) removeArtifacts(ctx context.Context, s plan.RemoveArtifacts, out *stepOutput) error {
	var errs []error
	for _, id := range s.Releases {
		rel := r.known[id]
		if rel == nil {
			continue
		}
		rt, err := r.e.Runtime(rel.Artifact.Runtime)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := rt.RemoveArtifact(ctx, rel.Artifact); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			errs = append(errs, fmt.Errorf("artifact of %s: %w", id, err))
			continue
		}
		out.Printf("deleted the artifact of %s: %s", id, rel.Artifact.Ref)
	}
	return errors.Join(errs...)
}

// deleteVolumes deletes the step's volumes; All (a destroy) also the rest
// of the app's data a runtime keeps.
func (r *execution) deleteVolumes(ctx context.Context, s plan.DeleteVolumes, out *stepOutput) error {
	e, app := r.e, r.rel.App
	if err := e.deleteVolumes(ctx, app, s.Volumes, out); err != nil || !s.All {
		return err
	}
	var errs []error
	for _, rt := range e.runtimes {
		if dr, ok := rt.(runtime.AppDataRemover); ok {
			gone, err := dr.RemoveAppData(ctx, app)
			for _, g := range gone {
				out.Printf("deleted %s (%s)", g, rt.Name())
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (r *execution) deleteBackups(ctx context.Context, s plan.DeleteBackups, out *stepOutput) error {
	e := r.e
	var errs []error
	for _, id := range s.IDs {
		b, err := e.st.GetBackup(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if b.Path != "" {
			if err := os.RemoveAll(b.Path); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := e.st.DeleteBackup(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		out.Printf("deleted backup %s (%s)", id, b.Path)
	}
	return errors.Join(errs...)
}

func (r *execution) forget(ctx context.Context, s plan.Forget, out *stepOutput) error {
	e, app := r.e, r.rel.App
	if err := e.st.DeleteApp(ctx, app, !s.KeepData); err != nil {
		return err
	}
	e.proxy.SetMaintenance(app, nil)
	out.Printf("forgot %s", app)
	return nil
}
