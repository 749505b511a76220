// Package prune removes what an app no longer needs: the artifacts
// (release directories, images) of releases beyond the retention window,
// and old logs. `moorage prune` runs through the engine's one entry point
// (Engine.OperateLocked: check, lock, load); which artifacts go is
// decided by the retention window of internal/plan (plan.Prunable), the
// same rule a deploy's prune step follows; the hourly log retention runs
// as the engine's background hook.
package prune

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Manager prunes the apps of an engine.
type Manager struct {
	e   *engine.Engine
	st  *store.Store
	log *slog.Logger
	// every is how often the log retention runs over every app.
	every time.Duration
}

// New returns the engine's pruner and registers its hourly log retention
// (call it before the engine starts).
func New(e *engine.Engine, st *store.Store, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{e: e, st: st, log: log, every: time.Hour}
	e.AddHooks(engine.Hooks{Background: m.janitor})
	return m
}

// Prune removes what app no longer needs: artifacts of releases beyond the
// retention window, and old logs. The active release and the releases a
// rollback may need are never removed. It takes the app's lock (refused
// while a deploy, restore or backup holds it: what a deploy is about to
// start must not go); a dry run changes nothing and takes no lock.
func (m *Manager) Prune(ctx context.Context, app string, dryRun bool) (*api.PruneReport, error) {
	o := engine.LockedOperation{App: app, Owner: "moorage prune", NeedApp: true}
	if !dryRun {
		o.Lock = "prune"
		// An app that does not exist is refused before its lock is taken.
		o.Check = func(ctx context.Context) error {
			_, err := m.st.GetApp(ctx, app)
			return err
		}
	}
	var rep *api.PruneReport
	err := m.e.OperateLocked(ctx, nil, o, func(ctx context.Context, a *store.App, _ *store.Release) error {
		var err error
		rep, err = m.pruneApp(ctx, a, dryRun)
		return err
	})
	return rep, err
}

// pruneApp is Prune of app a, read under its lock.
func (m *Manager) pruneApp(ctx context.Context, a *store.App, dryRun bool) (*api.PruneReport, error) {
	rep := &api.PruneReport{Artifacts: []api.PrunedArtifact{}, DryRun: dryRun}
	rels, err := m.prunable(ctx, a)
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		pa := api.PrunedArtifact{Release: r.ID(), Ref: r.Artifact.Ref}
		rt, rtErr := m.e.Runtime(r.Artifact.Runtime)
		if r.Artifact.Runtime == spec.RuntimeProcess {
			pa.Bytes = dirSize(r.Artifact.Ref)
		} else if sz, ok := rt.(runtime.ArtifactSizer); ok && rtErr == nil {
			pa.Bytes, _ = sz.ArtifactSize(ctx, r.Artifact)
		}
		if !dryRun {
			if rtErr != nil {
				continue
			}
			if err := rt.RemoveArtifact(ctx, r.Artifact); err != nil {
				return rep, fmt.Errorf("remove artifact of %s: %w", r.ID(), err)
			}
		}
		rep.Artifacts = append(rep.Artifacts, pa)
	}
	if !dryRun {
		if rep.LogBytes, err = m.e.PruneLogs(ctx, a); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// prunable is plan.Prunable of app a's history, without the artifacts its
// runtime no longer has (or whose runtime is not configured).
func (m *Manager) prunable(ctx context.Context, a *store.App) ([]plan.Release, error) {
	rels, err := m.st.ListReleases(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	var out []plan.Release
	for _, r := range plan.Prunable(plan.RetentionOfAll(rels), a.Current, nil) {
		rt, err := m.e.Runtime(r.Artifact.Runtime)
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

// janitor applies log retention to every app, at once and then every
// m.every, until ctx ends (the engine's background hook).
func (m *Manager) janitor(ctx context.Context) {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		apps, _ := m.st.ListApps(ctx)
		for _, a := range apps {
			if n, err := m.e.PruneLogs(ctx, a); err != nil {
				m.log.Warn("log retention", "app", a.Name, "err", err)
			} else if n > 0 {
				m.log.Info("log retention", "app", a.Name, "freed", fsutil.HumanBytes(n))
			}
		}
		select {
		case <-ctx.Done():
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
