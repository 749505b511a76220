package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/proxy"
)

// routesFile is the recorded route table, in the data dir: what the proxy
// served last, rewritten (atomically) at every change of an app's routes,
// so that a restarted server serves the same routes from its first
// moment, before its recovery has looked at any app.
const routesFile = "routes.json"

// routeTable is routes.json's content.
type routeTable struct {
	// Version of the format (1).
	Version int `json:"version"`
	// Apps are the routes of each routed app, as proxy.SetApp was given them.
	Apps map[string][]proxy.RouteTargets `json:"apps"`
}

// saveRoutes writes the proxy's route table to routes.json: a temporary
// file, synced, renamed over the old one, so a crash leaves the old table
// or the new one, never half of one.
func (s *Server) saveRoutes() {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	if s.proxy == nil {
		return
	}
	t := routeTable{Version: 1, Apps: s.proxy.Routes()}
	b, err := json.MarshalIndent(t, "", " ")
	if err == nil {
		err = writeFileAtomic(filepath.Join(s.cfg.DataDir, routesFile), b)
	}
	if err != nil {
		s.log.Warn("record the route table (a restart serves the routes it last recorded until its recovery routes each app)", "err", err)
	}
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// loadRoutes reads routes.json (an empty table when there is none).
func loadRoutes(dataDir string) (routeTable, error) {
	var t routeTable
	b, err := os.ReadFile(filepath.Join(dataDir, routesFile))
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%s: %w", routesFile, err)
	}
	if t.Version != 1 {
		return routeTable{}, fmt.Errorf("%s: unknown version %d", routesFile, t.Version)
	}
	return t, nil
}

// restoreRoutes gives the proxy the recorded routes of every app that
// still has an active release, with its front-door policy and TLS sites
// (from that release), before anything is recovered: the instances kept
// running while no server ran, and the recovery replaces each app's routes
// once it has converged it (one slow app delays nobody else's traffic).
// Routes to an instance that died meanwhile fail over like any dead target
// (health checks, retries on refused connections) until then.
func (s *Server) restoreRoutes(ctx context.Context) {
	t, err := loadRoutes(s.cfg.DataDir)
	if err != nil {
		s.log.Warn("recorded routes not used: the apps are routed once recovered", "err", err)
		return
	}
	apps := make([]string, 0, len(t.Apps))
	for app := range t.Apps {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	for _, app := range apps {
		a, err := s.store.GetApp(ctx, app)
		if err != nil || a.Current == 0 {
			continue // destroyed, or never deployed: nothing to serve
		}
		rel, err := s.store.GetRelease(ctx, app, a.Current)
		if err != nil {
			continue
		}
		if s.certs != nil {
			if err := s.certs.SetApp(app, certs.SitesOf(rel.Spec)); err != nil {
				s.log.Warn("recorded routes: tls", "app", app, "err", err)
			}
		}
		if s.edge != nil {
			if err := s.edge.SetApp(app, edge.SitesOf(rel.Spec)); err != nil {
				s.log.Warn("recorded routes: front door", "app", app, "err", err)
			}
		}
		if err := s.proxy.SetApp(app, t.Apps[app]); err != nil {
			s.log.Warn("recorded routes not used", "app", app, "err", err)
			continue
		}
		s.log.Info("serving the recorded routes until recovery", "app", app, "release", rel.ID())
	}
}
