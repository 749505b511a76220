package proxy

import (
	"fmt"
	"net"
	"slices"

	"github.com/moorage/moorage/internal/health"
)

// CheckHosts reports whether app could claim the hosts of routes: an error
// names a host (or the default route) that another app already claims, a
// host+prefix listed twice, or a malformed route.
func (p *Proxy) CheckHosts(app string, routes []Route) error {
	cfgs, err := normalizeRoutes(app, routes)
	if err != nil {
		return err
	}
	return p.table.Load().checkHosts(app, cfgs)
}

// SetApp atomically replaces all routes of app (the cutover). Once it
// returns, every new request for any of app's hosts goes to the new targets;
// requests already in flight to the old ones finish, and Drain waits for them.
// New targets start healthy (the engine health-gated them); targets that stay
// (same ID and address) keep their health state and connections. A target
// given with a known ID but a new address (a restarted instance got a new
// port) replaces the old one, which is forgotten at once: its in-flight
// requests finish, its connections close. An empty routes removes the app's
// routes, like RemoveApp.
func (p *Proxy) SetApp(app string, routes []RouteTargets) error {
	if app == "" {
		return fmt.Errorf("%w: empty app name", ErrInvalidRoute)
	}
	cfgs := make([]Route, len(routes))
	for i, rt := range routes {
		cfgs[i] = rt.Route
	}
	cfgs, err := normalizeRoutes(app, cfgs)
	if err != nil {
		return err
	}

	changed := false
	defer func() {
		if changed && p.opts.OnRoutes != nil {
			p.opts.OnRoutes(app) // after the unlock below
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.table.Load().checkHosts(app, cfgs); err != nil {
		return err
	}

	// Resolve targets: reuse the known ones, create the new ones. Nothing is
	// visible until the table swap, so an error here changes nothing.
	next := map[string]*target{}
	firstRoute := map[*target]Route{}
	compiled := make([]*route, 0, len(cfgs))
	st := p.appStateLocked(app)
	for i, cfg := range cfgs {
		ts := make([]*target, 0, len(routes[i].Targets))
		for _, tg := range routes[i].Targets {
			t, err := p.resolveTarget(app, cfg.Service, tg, next)
			if err != nil {
				return err
			}
			if _, ok := firstRoute[t]; !ok {
				firstRoute[t] = cfg
			}
			if !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
		rt := newRoute(cfg, ts)
		rt.app = st
		compiled = append(compiled, rt)
		compiled = append(compiled, rt.staticRoutes()...)
	}

	// Commit. Targets join before the swap and leave after it, which is what
	// lets acquire detect a request that raced with the cutover.
	var replaced []*target
	for id, t := range next {
		if old := p.targets[id]; old != nil && old != t {
			replaced = append(replaced, old)
		}
		p.targets[id] = t
		t.routed.Store(true)
	}
	if len(compiled) == 0 {
		delete(p.apps, app)
	} else {
		p.apps[app] = compiled
	}
	p.table.Store(buildTable(p.apps))
	p.remember(app, routes)
	changed = true
	var left []string
	for id, t := range p.targets {
		if t.app == app && next[id] == nil && t.routed.Load() {
			t.routed.Store(false)
			t.stopChecks()
			left = append(left, id)
		}
	}
	for _, old := range replaced {
		// Same ID, new address: the old address is gone (the instance
		// restarted), so there is nothing to drain; requests in flight there
		// finish or fail on their own.
		old.routed.Store(false)
		old.stopChecks()
		old.forgotten.Store(true)
		old.closeIdleConnections(true)
		p.logger.Info("target moved", "app", app, "target", old.id, "from", old.addr, "to", next[old.id].addr)
	}
	for t, cfg := range firstRoute {
		t.drainTimeout = cfg.DrainTimeout
		t.startChecks(p, cfg.Health, health.Host(cfg.Hosts))
	}
	p.changes.notify()
	slices.Sort(left)
	p.logger.Info("routes set", "app", app, "routes", len(compiled), "targets", len(next), "unrouted", left)
	return nil
}

// RemoveApp removes every route of app. Its targets stay known, unrouted,
// until Drain waits for their in-flight requests and forgets them.
func (p *Proxy) RemoveApp(app string) {
	if app == "" {
		return
	}
	_ = p.SetApp(app, nil) // cannot fail without routes, but for ErrClosed
}

// resolveTarget returns the target for tg: one already chosen for this
// SetApp, a known one, or a new one. next collects them.
func (p *Proxy) resolveTarget(app, service string, tg Target, next map[string]*target) (*target, error) {
	if tg.ID == "" {
		return nil, fmt.Errorf("%w: target of app %q without an ID", ErrInvalidRoute, app)
	}
	if _, _, err := net.SplitHostPort(tg.Addr); err != nil {
		return nil, fmt.Errorf("%w: target %s: address %q is not host:port", ErrInvalidRoute, tg.ID, tg.Addr)
	}
	t := next[tg.ID]
	if t == nil {
		t = p.targets[tg.ID]
	}
	switch {
	case t != nil && t.app != app:
		return nil, fmt.Errorf("%w: target %s is already used by app %q", ErrTargetConflict, tg.ID, t.app)
	case t != nil && t.addr != tg.Addr && next[tg.ID] != nil:
		return nil, fmt.Errorf("%w: target %s is given at two addresses, %s and %s", ErrInvalidRoute, tg.ID, t.addr, tg.Addr)
	case t == nil || t.addr != tg.Addr:
		t = newTarget(p, app, service, tg) // new, or moved to a new address
	}
	next[tg.ID] = t
	return t, nil
}

// normalizeRoutes normalizes every route of app.
func normalizeRoutes(app string, routes []Route) ([]Route, error) {
	out := make([]Route, len(routes))
	for i, r := range routes {
		n, err := r.normalize(app)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// startChecks (re)starts t's health checker unless one runs with the same
// settings. Called with p.mu held.
func (t *target) startChecks(p *Proxy, cfg HealthCheck, host string) {
	if c := t.checker; c != nil {
		if c.cfg == cfg && c.host == host {
			return
		}
		t.stopChecks()
	}
	t.checker = startHealthChecker(p.ctx, t, cfg, host, p.health)
}

// stopChecks stops t's health checker and waits for it. Called with p.mu
// held; the checker never takes p.mu.
func (t *target) stopChecks() {
	if t.checker != nil {
		t.checker.stop()
		t.checker = nil
	}
}
