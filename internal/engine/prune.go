package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// PruneReport says what a prune freed (internal/api).
type (
	PrunedArtifact = api.PrunedArtifact
	PruneReport    = api.PruneReport
)

// Prune removes what app no longer needs: artifacts (release directories,
// images) of releases beyond the retention window, and old logs. The active
// release and the releases a rollback may need are never removed. It takes
// the app's lock (refused while a deploy, restore or backup holds it: what
// a deploy is about to start must not go); a dry run changes nothing and
// takes no lock.
func (e *Engine) Prune(ctx context.Context, app string, dryRun bool) (*PruneReport, error) {
	o := LockedOperation{App: app, Owner: "moorage prune", NeedApp: true}
	if !dryRun {
		o.Lock = "prune"
		// An app that does not exist is refused before its lock is taken.
		o.Check = func(ctx context.Context) error {
			_, err := e.st.GetApp(ctx, app)
			return err
		}
	}
	var rep *PruneReport
	err := e.OperateLocked(ctx, newOp(), o, func(ctx context.Context, a *store.App, _ *store.Release) error {
		var err error
		rep, err = e.pruneApp(ctx, a, dryRun)
		return err
	})
	return rep, err
}

// prune is Prune for a caller that holds the app's lock (a deploy's last
// step).
func (e *Engine) prune(ctx context.Context, app string, dryRun bool) (*PruneReport, error) {
	a, err := e.st.GetApp(ctx, app)
	if err != nil {
		return nil, err
	}
	return e.pruneApp(ctx, a, dryRun)
}

// pruneApp is prune of app a, read under its lock.
func (e *Engine) pruneApp(ctx context.Context, a *store.App, dryRun bool) (*PruneReport, error) {
	rep := &PruneReport{Artifacts: []PrunedArtifact{}, DryRun: dryRun}
	arts, err := e.prunableArtifacts(ctx, a)
	if err != nil {
		return nil, err
	}
	for _, r := range arts {
		pa := PrunedArtifact{Release: r.ID(), Ref: r.Artifact.Ref}
		if r.Artifact.Runtime == spec.RuntimeProcess {
			pa.Bytes = dirSize(r.Artifact.Ref)
		} else if rt, err := e.Runtime(r.Artifact.Runtime); err == nil {
			if sz, ok := rt.(runtime.ArtifactSizer); ok {
				pa.Bytes, _ = sz.ArtifactSize(ctx, r.Artifact)
			}
		}
		if !dryRun {
			rt, err := e.Runtime(r.Artifact.Runtime)
			if err != nil {
				continue
			}
			if err := rt.RemoveArtifact(ctx, r.Artifact); err != nil {
				return rep, fmt.Errorf("remove artifact of %s: %w", r.ID(), err)
			}
		}
		rep.Artifacts = append(rep.Artifacts, pa)
	}
	if !dryRun {
		if rep.LogBytes, err = e.pruneLogs(ctx, a); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// prunableArtifacts are the artifacts of app's releases beyond the
// retention window (deploy.keep_releases of the active spec). The window
// counts artifacts, not releases: the active release's artifact, pending
// ones' and those of the newest retired releases up to keep_releases
// distinct artifacts in all are kept. Config-only releases and rollbacks
// share their artifact, so five config changes do not push the code of the
// previous deploy out of the window.
func (e *Engine) prunableArtifacts(ctx context.Context, a *store.App) ([]*store.Release, error) {
	rels, err := e.st.ListReleases(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*store.Release{}
	for _, r := range rels {
		byVersion[r.Version] = r
	}
	candidates, kept := plan.Window(windowReleases(rels), a.Current)
	var out []*store.Release
	done := map[string]bool{}
	for i := len(candidates) - 1; i >= 0; i-- { // oldest first
		r := byVersion[candidates[i].Version]
		if r.Artifact.Ref == "" || kept[r.Artifact.Ref] || done[r.Artifact.Ref] {
			continue
		}
		done[r.Artifact.Ref] = true
		rt, err := e.Runtime(r.Artifact.Runtime)
		if err != nil {
			continue
		}
		if ok, err := rt.ArtifactExists(ctx, r.Artifact); err != nil || !ok {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// pruneLogs applies the active spec's log retention to app's logs in every
// runtime. The logs of running instances are kept.
func (e *Engine) pruneLogs(ctx context.Context, a *store.App) (int64, error) {
	ret := runtime.LogRetention{MaxAge: spec.DefaultLogMaxAge, MaxBytes: spec.DefaultLogMaxSize}
	if a.Current != 0 {
		if rel, err := e.st.GetRelease(ctx, a.Name, a.Current); err == nil && rel.Spec.Logs.MaxAge > 0 {
			ret.MaxAge, ret.MaxBytes = rel.Spec.Logs.MaxAge, rel.Spec.Logs.MaxSize
		}
	}
	observed, err := e.observe(ctx, a.Name)
	if err != nil {
		return 0, err
	}
	running := map[string]bool{}
	for _, in := range observed {
		if in.State != runtime.StateExited {
			running[in.ID] = true
		}
	}
	ret.Keep = func(id string) bool { return running[id] }
	var total int64
	var errs []error
	for _, rt := range e.runtimes {
		n, err := rt.PruneLogs(ctx, a.Name, ret)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// janitor applies log retention to every app hourly.
func (e *Engine) janitor() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		apps, _ := e.st.ListApps(e.ctx)
		for _, a := range apps {
			if n, err := e.pruneLogs(e.ctx, a); err != nil {
				e.log.Warn("log retention", "app", a.Name, "err", err)
			} else if n > 0 {
				e.log.Info("log retention", "app", a.Name, "freed", fsutil.HumanBytes(n))
			}
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// windowRelease is what the retention window (plan.Window) knows of r.
func windowRelease(r *store.Release) plan.Release {
	w := plan.Release{Version: r.Version, Status: r.Status, Artifact: r.Artifact}
	if r.Spec != nil {
		w.KeepReleases = r.Spec.Deploy.KeepReleases
	}
	return w
}

func windowReleases(rels []*store.Release) []plan.Release {
	out := make([]plan.Release, len(rels))
	for i, r := range rels {
		out[i] = windowRelease(r)
	}
	return out
}
