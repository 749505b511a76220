package proxy

import (
	"maps"
	"slices"
)

// remember records routes as app's current ones, for Routes. p.mu is held.
func (p *Proxy) remember(app string, routes []RouteTargets) {
	if len(routes) == 0 {
		delete(p.given, app)
		return
	}
	cp := make([]RouteTargets, len(routes))
	for i, rt := range routes {
		cp[i] = RouteTargets{Route: rt.Route, Targets: slices.Clone(rt.Targets)}
		cp[i].Route.Hosts = slices.Clone(rt.Route.Hosts)
		cp[i].Route.Static = maps.Clone(rt.Route.Static)
	}
	p.given[app] = cp
}

// Routes returns the route table: every routed app's routes and targets,
// as SetApp was last given them. SetApp(app, Routes()[app]) on a new Proxy
// serves the same requests the same way, which is how a restarted server
// serves the recorded routes before its recovery has looked at anything.
func (p *Proxy) Routes() map[string][]RouteTargets {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]RouteTargets, len(p.given))
	for app, rts := range p.given {
		out[app] = rts // never modified in place: remember replaces
	}
	return out
}
