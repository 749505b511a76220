package engine

import (
	"context"
	"fmt"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// route points the proxy at instances that run already (recovery).
func (r *execution) route(ctx context.Context, s plan.Route, out *stepOutput) error {
	return r.routeTo(ctx, s.Release, s.Routes, out, false, false)
}

// cutover swaps every route of the app to the step's instances. A cutover
// the plan marks as the commit point (Cutover.Commit: the target of a
// deploy, rollback, config change, scale or restore) records the target
// as active; any other cutover (undo, revert, recovery) makes its release
// the active one again.
func (r *execution) cutover(ctx context.Context, s plan.Cutover, out *stepOutput) error {
	return r.routeTo(ctx, s.Release, s.Routes, out, true, s.Commit)
}

// routeTo points the proxy at routes, instances of release; a cutover
// also records which release is active (commit: the operation's target,
// at its commit point).
func (r *execution) routeTo(ctx context.Context, release string, routes []string, out *stepOutput, cutover, commit bool) error {
	rel, err := r.release(ctx, release)
	if err != nil {
		return err
	}
	observed, err := r.e.observe(ctx, rel.App)
	if err != nil {
		return err
	}
	static, err := r.e.staticDirs(ctx, rel)
	if err != nil {
		return err
	}
	rts, err := routesFor(rel, routes, observed, static)
	if err != nil {
		return err
	}
	if !r.undoing && r.fellBack() {
		// The target crashed after its cutover and traffic went back to
		// the previous release (watchFallback): it stays there; the
		// deploy fails at its next step and rolls back.
		out.Printf("not routing to %s: %s crashed after its cutover, traffic stays on the previous release until the rollback", listOrNone(routes), r.rel.ID())
		return nil
	}
	for _, id := range routes {
		r.routed[id] = rel.ID()
	}
	if !cutover {
		if err := r.e.setFront(rel); err != nil {
			out.Printf("warning: %v", err)
		}
		if err := r.e.proxy.SetApp(rel.App, rts); err != nil {
			return fmt.Errorf("route %s: %w", rel.App, err)
		}
		out.Printf("routing to %s", listOrNone(routes))
		return nil
	}
	// The operation claims the hosts of this release (claimHTTPHosts), so no
	// other app can take one between this check and the routing below.
	if err := r.e.checkHTTPHosts(rel.App, rel.Spec, true); err != nil {
		return err
	}
	// Commit first: once the store says the target is active, a crash at
	// any later point is finished by recovery (which routes to it), and a
	// failure before this line changed nothing.
	main := commit
	if main && (rel != r.rel || r.undoing) {
		return fmt.Errorf("bad plan: the commit point of %s is a cutover to %s", r.rel.ID(), rel.ID())
	}
	if main {
		if r.monitored && r.crashes == nil {
			// From the cutover on, a crash of the target is the monitor's
			// business, even one before the monitor step starts.
			r.crashes, r.unwatchCrashes = r.e.watch(crashOf(rel.App, rel.ID()))
			r.watchFallback(rel, r.e.proxy.Routes()[rel.App])
		}
		err = r.e.st.CommitCutover(ctx, r.deploy.ID, rel.App, rel.Version)
	} else {
		err = r.e.st.Activate(ctx, rel.App, rel.Version)
	}
	if err != nil {
		return err
	}
	if main {
		r.cutOver = true
	}
	r.e.failpoint("commit:" + r.prefix + string(plan.KindCutover))
	if err := r.e.setFront(rel); err != nil {
		// Checked above; only a certificate file changed since can fail.
		out.Printf("warning: %v", err)
	}
	if err := r.e.proxy.SetApp(rel.App, rts); err != nil {
		return fmt.Errorf("route %s: %w", rel.App, err)
	}
	out.Printf("%s now serves (%d web instances)", rel.ID(), len(routes))
	return nil
}

// routesFor builds the proxy routes of rel with the given instances.
// static maps a volume name to its directory on the host, for
// `http.static` paths.
func routesFor(rel *store.Release, ids []string, observed []runtime.Instance, static map[string]string) ([]proxy.RouteTargets, error) {
	byID := map[string]runtime.Instance{}
	for _, in := range observed {
		byID[in.ID] = in
	}
	var out []proxy.RouteTargets
	for _, name := range rel.Spec.ServiceNames() {
		svc := rel.Spec.Services[name]
		if !svc.Routed() {
			continue
		}
		rt := proxy.RouteTargets{Route: routeOf(rel.App, rel.Spec, name)}
		for prefix, vol := range svc.HTTP.Static {
			if rt.Route.Static == nil {
				rt.Route.Static = map[string]string{}
			}
			rt.Route.Static[prefix] = static[vol]
		}
		for _, id := range ids {
			in, ok := byID[id]
			if !ok {
				return nil, &instanceError{id: id, err: fmt.Errorf("cannot route to %s: it does not exist", id)}
			}
			if in.Service != name {
				continue
			}
			if in.State == runtime.StateExited || in.Addr == "" {
				return nil, &instanceError{id: id, err: fmt.Errorf("cannot route to %s: it is not running", id)}
			}
			rt.Targets = append(rt.Targets, proxy.Target{ID: id, Addr: in.Addr})
		}
		out = append(out, rt)
	}
	return out, nil
}

func routeOf(app string, sp *spec.Spec, name string) proxy.Route {
	svc := sp.Services[name]
	h := svc.HTTP
	rt := proxy.Route{
		App: app, Service: name, Hosts: h.Hosts, PathPrefix: h.Path,
		DrainTimeout: sp.Deploy.DrainTimeout, HoldTimeout: h.HoldTimeout, MaxBody: h.MaxBody,
	}
	if h.DrainTimeout > 0 {
		rt.DrainTimeout = h.DrainTimeout
	}
	if hc := svc.Health; hc != nil {
		rt.Health = proxy.HealthCheck{Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout, Retries: hc.Retries}
	}
	return rt
}

// staticDirs resolves the volumes rel serves as static paths.
func (e *Engine) staticDirs(ctx context.Context, rel *store.Release) (map[string]string, error) {
	out := map[string]string{}
	rt, err := e.Runtime(rel.Runtime)
	if err != nil {
		return nil, err
	}
	for _, svc := range rel.Spec.Services {
		if svc.HTTP == nil {
			continue
		}
		for _, vol := range svc.HTTP.Static {
			if _, ok := out[vol]; ok {
				continue
			}
			if err := rt.EnsureVolume(ctx, rel.App, vol); err != nil {
				return nil, err
			}
			dir, err := rt.VolumePath(ctx, rel.App, vol)
			if err != nil {
				return nil, fmt.Errorf("static volume %s: %w", vol, err)
			}
			out[vol] = dir
		}
	}
	return out, nil
}

func routesOfSpec(app string, sp *spec.Spec) []proxy.Route {
	var out []proxy.Route
	for _, name := range sp.ServiceNames() {
		if sp.Services[name].Routed() {
			out = append(out, routeOf(app, sp, name))
		}
	}
	return out
}

// watchFallback sends traffic back to the routes the app had before the
// cutover to rel (previous: the previous release's web instances, kept
// warm through the monitor window) as soon as an instance of rel crashes,
// without waiting for the step that runs then to end. The plan rolls back
// for that crash all the same (the monitor's watcher gets it too), and its
// revert starts with the same cutover; but the step running when the crash
// came may take long (a container start on a loaded Docker Engine: 11 s
// was seen), and the proxy holds requests for at most its hold timeout
// meanwhile. Nothing else changes here: no instance is started or stopped.
// Without a previous route with an instance (a first deploy), there is
// nothing to go back to, and nothing is watched.
func (r *execution) watchFallback(rel *store.Release, previous []proxy.RouteTargets) {
	n := 0
	for _, rt := range previous {
		n += len(rt.Targets)
	}
	if n == 0 {
		return
	}
	w, unwatch := r.e.watch(crashOf(rel.App, rel.ID()))
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case ev := <-w.ch:
			r.fallbackMu.Lock()
			defer r.fallbackMu.Unlock()
			if r.undoing {
				return // the rollback already routes
			}
			if err := r.e.proxy.SetApp(rel.App, previous); err != nil {
				r.e.log.Error("sending traffic back to the previous release", "app", rel.App, "err", err)
				return
			}
			r.fallback = true
			r.e.log.Warn("instance crashed after the cutover: traffic back on the previous release", "app", rel.App, "instance", ev.Instance)
			r.op.emit(Event{Type: EventWarn, Release: rel.ID(), Instance: ev.Instance,
				Text: fmt.Sprintf("%s crashed (%s): traffic is back on the previous release's %d warm web instances; the deploy rolls back", ev.Instance, ev.Message, n)})
		case <-done:
		}
	}()
	prev := r.unwatchCrashes
	r.unwatchCrashes = func() {
		prev()
		unwatch()
		close(done)
		<-stopped
	}
}

// fellBack reports whether watchFallback sent traffic back.
func (r *execution) fellBack() bool {
	r.fallbackMu.Lock()
	defer r.fallbackMu.Unlock()
	return r.fallback
}
