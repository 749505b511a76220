package server

import (
	"context"
	"path/filepath"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/store"
)

// removeStrayReleases removes the release directories of the process
// runtime that no release records as its artifact: a server killed during
// a build leaves one, and nothing would ever prune it. It runs at start,
// after recovery and before the API serves, so no deploy is building. A
// directory is kept when a release records it, when its release is still
// pending, or when an instance runs it; apps the store does not know are
// left alone.
func (s *Server) removeStrayReleases(ctx context.Context) {
	prt, ok := s.runtimes[process.Name].(*process.Runtime)
	if !ok {
		return
	}
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		s.log.Warn("stray release directories: list apps", "err", err)
		return
	}
	for _, a := range apps {
		rels, err := s.store.ListReleases(ctx, a.Name)
		if err != nil {
			s.log.Warn("stray release directories: list releases", "app", a.Name, "err", err)
			continue
		}
		ins, err := prt.List(ctx, runtime.Filter{App: a.Name})
		if err != nil {
			s.log.Warn("stray release directories: list instances", "app", a.Name, "err", err)
			continue
		}
		keep := map[string]bool{}
		for _, r := range rels {
			if r.Artifact.Runtime == process.Name && r.Artifact.Ref != "" {
				keep[filepath.Base(r.Artifact.Ref)] = true
			}
			if r.Status == store.ReleasePending {
				keep[r.ID()] = true
			}
		}
		for _, in := range ins {
			// Runs from its release's recorded artifact (kept above),
			// unless the store does not know that release: keep it too.
			keep[in.Release] = true
		}
		removed, err := prt.RemoveStrayReleases(ctx, a.Name, func(rel string) bool { return keep[rel] })
		for _, d := range removed {
			s.log.Info("removed a release directory no release records (a build was interrupted)", "app", a.Name, "dir", d)
		}
		if err != nil {
			s.log.Warn("stray release directories", "app", a.Name, "err", err)
		}
	}
}
