package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/health"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

func (r *run) build(ctx context.Context, out *stepOutput) error {
	if r.ctxDir == "" {
		return errors.New("nothing was uploaded to build")
	}
	art, err := r.rt.Build(ctx, runtime.BuildRequest{
		App: r.rel.App, Release: r.rel.ID(), ContextDir: r.ctxDir, Spec: r.rel.Spec, Output: out,
		Env: buildEnv(r.rel.Spec, r.rel.Config),
	})
	if err != nil {
		return err
	}
	if err := r.e.st.SetReleaseArtifact(ctx, r.rel.App, r.rel.Version, art); err != nil {
		return err
	}
	r.rel.Artifact = art
	out.Printf("built %s: %s", r.rel.ID(), art.Ref)
	return nil
}

// buildEnv is what build.command gets of the app, in a deploy and in
// moorage check alike: the spec's env and the config values (literal, as
// config values always are), never its secrets, since build output is
// stored with the deploy.
func buildEnv(sp *spec.Spec, cfg store.Config) map[string]string {
	return runtime.Merge(sp.Env, runtime.EscapeEnv(cfg.Env))
}

func (r *run) prepare(ctx context.Context, s plan.Prepare, out *stepOutput) error {
	if err := r.rt.EnsureNetwork(ctx, r.rel.App); err != nil {
		return err
	}
	for _, v := range s.Volumes {
		if err := r.rt.EnsureVolume(ctx, r.rel.App, v); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) accessory(ctx context.Context, s plan.Accessory, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	acc := rel.Spec.Accessories[s.Name]
	id := runtime.InstanceID(rel.App, s.Name, "", 0, runtime.KindAccessory)
	switch s.Action {
	case plan.AccessoryKeep, plan.AccessoryStopped:
		out.Printf("%s: %s", s.Name, s.Reason)
		return nil
	case plan.AccessoryStop, plan.AccessoryRemove:
		if s.Action == plan.AccessoryStop {
			// Recorded first: whatever happens next, no plan starts it
			// again until `moorage accessory start`.
			if err := r.e.setAccessoryStopped(ctx, rel.App, s.Name, true); err != nil {
				return err
			}
		}
		if err := r.removeInstance(ctx, id); err != nil {
			return fmt.Errorf("accessory %s: %w", s.Name, err)
		}
		out.Printf("stopped %s", id)
		if s.Action == plan.AccessoryRemove {
			if err := r.e.setAccessoryStopped(ctx, rel.App, s.Name, false); err != nil {
				return err
			}
			out.Printf("removed accessory %s", s.Name)
		}
		return nil
	}
	if acc == nil {
		return fmt.Errorf("%s has no accessory %q", rel.ID(), s.Name)
	}
	env, err := r.e.accessorySpecEnv(rel, acc)
	if err != nil {
		return err
	}
	if s.Action == plan.AccessoryRestart {
		out.Printf("restarting %s: %s", s.Name, s.Reason)
	}
	// Start or restart: whatever is there (exited, or the old spec) goes.
	if err := r.rt.Remove(ctx, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("remove accessory %s: %w", s.Name, err)
	}
	is := runtime.InstanceSpec{
		App: rel.App, Service: s.Name, Kind: runtime.KindAccessory,
		Artifact: rel.Artifact, // docker: its copies of "./dir" host paths
		Image:    acc.Image, Command: acc.Command, Env: env, Port: acc.Port,
		StopSignal: syscall.Signal(acc.StopSignal), StopTimeout: acc.StopTimeout, StopGroup: acc.StopGroup,
		User: acc.User, Memory: acc.Memory, CPUs: acc.CPUs,
		Hash: accessoryHash(acc),
	}
	for _, v := range acc.Volumes {
		is.Mounts = append(is.Mounts, runtime.Mount{Name: v.Name, Target: v.Path})
	}
	r.e.st.PutInstance(ctx, store.InstanceRecord{ID: id, App: rel.App, Service: s.Name, Kind: string(runtime.KindAccessory), DeployID: r.deploy.ID, State: store.InstanceStarting})
	in, err := r.rt.Start(ctx, is)
	if err != nil {
		return &instanceError{id: id, err: fmt.Errorf("start accessory %s: %w", s.Name, err)}
	}
	r.e.st.SetInstanceState(ctx, id, store.InstanceRunning)
	g := plan.AccessoryGate(acc.Health, in.Addr != "")
	out.Printf("started %s, waiting until %s", id, g)
	if err := r.gate(ctx, []gated{{in: in, gate: g, timeout: plan.HealthTimeout(acc.Health)}}); err != nil {
		return err
	}
	out.Printf("%s is ready", s.Name)
	// Started on purpose (`moorage accessory start`): no longer stopped.
	return r.e.setAccessoryStopped(ctx, rel.App, s.Name, false)
}

func (r *run) task(ctx context.Context, s plan.Task, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("%s-%d", s.Kind(), s.Index+1)
	env, err := r.env(ctx, rel, "")
	if err != nil {
		return err
	}
	is := runtime.InstanceSpec{
		App: rel.App, Service: label, Release: rel.ID(), Kind: runtime.KindTask,
		Artifact: rel.Artifact, Command: s.Command, Env: env, Mounts: mountsFor(rel.Spec, ""),
		StopSignal: syscall.SIGTERM, StopTimeout: spec.DefaultStopTimeout,
	}
	// A task runs as the first service does (on the process runtime, the
	// app's user unless that service has user: or allow_root:).
	is.User, is.AllowRoot = firstService(rel.Spec).User, firstService(rel.Spec).AllowRoot
	id := is.ID()
	r.e.st.PutInstance(ctx, store.InstanceRecord{ID: id, App: rel.App, Service: label, Release: rel.ID(), Kind: string(runtime.KindTask), DeployID: r.deploy.ID, State: store.InstanceStarting})
	defer r.e.st.SetInstanceState(context.WithoutCancel(ctx), id, store.InstanceRemoved)
	code, err := r.rt.Run(ctx, runtime.RunSpec{InstanceSpec: is, Timeout: s.Timeout, Stdout: out, Stderr: out})
	if err != nil {
		if errors.Is(err, runtime.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s task %d `%s` did not finish within %s: %w", s.Kind(), s.Index+1, strings.Join(s.Command, " "), s.Timeout, err)
		}
		return fmt.Errorf("%s task %d `%s`: %w", s.Kind(), s.Index+1, strings.Join(s.Command, " "), err)
	}
	if code != 0 {
		return fmt.Errorf("%s task %d `%s` exited with status %d", s.Kind(), s.Index+1, strings.Join(s.Command, " "), code)
	}
	return nil
}

func firstService(sp *spec.Spec) *spec.Service {
	for _, n := range sp.ServiceNames() {
		return sp.Services[n]
	}
	return &spec.Service{}
}

// gated is an instance waiting for its gate.
type gated struct {
	in      runtime.Instance
	gate    plan.Gate
	timeout time.Duration
	host    string // Host of an HTTP gate: the route's, as the proxy's checks send it
}

// probeHost is the Host header of service's HTTP health probes (gate and
// proxy alike): its route's canonical host, "" for an unrouted service.
func probeHost(sp *spec.Spec, service string) string {
	if svc := sp.Services[service]; svc != nil && svc.HTTP != nil {
		return health.Host(svc.HTTP.Hosts)
	}
	return ""
}

func (r *run) start(ctx context.Context, s plan.Start, out *stepOutput) error {
	var wait []gated
	ids := map[string]bool{}
	for _, st := range s.Starts {
		for _, idx := range st.Indices {
			ids[runtime.InstanceID(r.rel.App, st.Service, st.Release, idx, runtime.KindService)] = true
		}
	}
	w, unwatch := r.e.watch(func(ev runtime.Event) bool { return ev.Type == runtime.EventCrash && ids[ev.Instance] })
	defer unwatch()
	type job struct {
		rel     *store.Release
		service string
		idx     int
		gate    plan.Gate
		timeout time.Duration
	}
	var jobs []job
	for _, st := range s.Starts {
		rel, err := r.release(ctx, st.Release)
		if err != nil {
			return err
		}
		svc := rel.Spec.Services[st.Service]
		g := st.Gate.Resolve(rel.Artifact.Healthcheck, rel.Artifact.HealthcheckWait)
		if st.Gate.Else != nil && len(st.Indices) > 0 {
			out.Printf("%s: %s", st.Service, g)
		}
		for _, idx := range st.Indices {
			jobs = append(jobs, job{rel: rel, service: st.Service, idx: idx, gate: g, timeout: plan.HealthTimeout(svc.Health)})
		}
	}
	// Instances start side by side (a container takes a second or more to
	// create and start), a few at a time; the first failure stops the
	// rest from starting, and the step fails once those in flight are done.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait = make([]gated, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, parallelStarts)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-sctx.Done():
				errs[i] = sctx.Err()
				return
			}
			if err := sctx.Err(); err != nil {
				errs[i] = err
				return
			}
			in, err := r.startInstance(sctx, j.rel, j.service, j.idx)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			out.Printf("started %s %s", in.ID, addrNote(in))
			wait[i] = gated{in: in, gate: j.gate, timeout: j.timeout, host: probeHost(j.rel.Spec, j.service)}
		}()
	}
	wg.Wait()
	if err := firstStartError(ctx, errs); err != nil {
		return err
	}
	return r.gateWatching(ctx, wait, w, out)
}

// parallelStarts bounds how many instances a start step starts at once.
const parallelStarts = 4

// firstStartError returns the error that failed a start step: the first
// real failure rather than the cancellations it caused in the others, or
// ctx's error when the step itself was interrupted.
func firstStartError(ctx context.Context, errs []error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var cancelled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			if cancelled == nil {
				cancelled = err
			}
		default:
			return err
		}
	}
	return cancelled
}

func addrNote(in runtime.Instance) string {
	if in.Addr == "" {
		return ""
	}
	return "on " + in.Addr
}

func (r *run) startInstance(ctx context.Context, rel *store.Release, service string, idx int) (runtime.Instance, error) {
	is, err := r.instanceSpec(ctx, rel, service, idx)
	if err != nil {
		return runtime.Instance{}, err
	}
	id := is.ID()
	// Journal first: a crash between here and Start leaves a record that
	// recovery reconciles with what the runtime reports.
	r.e.st.PutInstance(ctx, store.InstanceRecord{ID: id, App: rel.App, Service: service, Release: rel.ID(), Index: idx, Kind: string(runtime.KindService), DeployID: r.deploy.ID, State: store.InstanceStarting})
	in, err := r.rt.Start(ctx, is)
	if errors.Is(err, runtime.ErrExists) {
		// A stale, stopped copy (after a crash): replace it.
		if rerr := r.rt.Remove(ctx, id); rerr == nil {
			in, err = r.rt.Start(ctx, is)
		}
	}
	if err != nil {
		return runtime.Instance{}, &instanceError{id: id, err: fmt.Errorf("start %s: %w", id, err)}
	}
	r.e.st.SetInstanceState(ctx, id, store.InstanceRunning)
	return in, nil
}

// gate waits until every instance passes its gate, failing fast when one
// crashes.
func (r *run) gate(ctx context.Context, wait []gated) error {
	ids := map[string]bool{}
	for _, g := range wait {
		ids[g.in.ID] = true
	}
	w, unwatch := r.e.watch(func(ev runtime.Event) bool { return ev.Type == runtime.EventCrash && ids[ev.Instance] })
	defer unwatch()
	return r.gateWatching(ctx, wait, w, nil)
}

func (r *run) gateWatching(ctx context.Context, wait []gated, w *watcher, out *stepOutput) error {
	if len(wait) == 0 {
		return nil
	}
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for {
			select {
			case <-gctx.Done():
				return
			case ev := <-w.ch:
				cancel(&instanceError{id: ev.Instance, err: fmt.Errorf("%s crashed before it became ready (%s)", ev.Instance, ev.Message)})
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(wait))
	for i, g := range wait {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs[i] = r.waitGate(gctx, g)
			if errs[i] != nil {
				if cause := context.Cause(gctx); cause != nil && !errors.Is(cause, context.Canceled) {
					errs[i] = cause
				} else {
					errs[i] = &instanceError{id: g.in.ID, err: fmt.Errorf("%s did not become ready: %w", g.in.ID, errs[i])}
				}
				cancel(errs[i])
				return
			}
			if out != nil {
				out.Printf("%s ready in %s", g.in.ID, time.Since(start).Round(time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if cause := context.Cause(gctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return errors.Join(errs...)
}

func (r *run) waitGate(ctx context.Context, g gated) error {
	var check health.Check
	switch g.gate.Kind {
	case "http":
		check = health.HTTP(nil, g.in.Addr, g.host, g.gate.Path, g.timeout)
	case "tcp":
		check = health.TCP(g.in.Addr, g.timeout)
	case "command":
		id, cmd := g.in.ID, g.gate.Command
		check = health.Command(g.timeout, func(ctx context.Context) (int, string, error) {
			var b strings.Builder
			lw := &limitedWriter{w: &b, n: 4096}
			code, err := r.rt.Exec(ctx, id, runtime.ExecSpec{Cmd: cmd, Stdout: lw, Stderr: lw})
			return code, b.String(), err
		})
	case "image":
		id := g.in.ID
		// Docker's verdict "unhealthy" (its retries failed after its start
		// period) is final: stop waiting.
		gctx, verdict := context.WithCancel(ctx)
		defer verdict()
		unhealthy := false
		check = func(ctx context.Context) error {
			_, in, err := r.e.runtimeOf(ctx, r.rel.App, id)
			if err != nil {
				return err
			}
			switch in.Health {
			case "healthy":
				return nil
			case "unhealthy":
				unhealthy = true
				verdict()
			}
			return fmt.Errorf("%w: the image's HEALTHCHECK says %q", health.ErrUnhealthy, in.Health)
		}
		err := health.WaitReady(gctx, check, g.gate.Interval, g.gate.Within)
		if err != nil && unhealthy && ctx.Err() == nil {
			return fmt.Errorf("%w: the image's HEALTHCHECK failed its retries after its start period (docker inspect shows its probes' output)", health.ErrUnhealthy)
		}
		return err
	default:
		t := time.NewTimer(g.gate.Within)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return health.WaitReady(ctx, check, g.gate.Interval, g.gate.Within)
}

type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p
		if len(q) > l.n {
			q = q[:l.n]
		}
		l.n -= len(q)
		l.w.WriteString(string(q))
	}
	return len(p), nil
}

// route points the proxy at instances that run already (recovery).
func (r *run) route(ctx context.Context, s plan.Route, out *stepOutput) error {
	return r.routeTo(ctx, s.Release, s.Routes, out, false, false)
}

// cutover swaps every route of the app to the step's instances. A cutover
// the plan marks as the commit point (Cutover.Commit: the target of a
// deploy, rollback, config change, scale or restore) records the target
// as active; any other cutover (undo, revert, recovery) makes its release
// the active one again.
func (r *run) cutover(ctx context.Context, s plan.Cutover, out *stepOutput) error {
	return r.routeTo(ctx, s.Release, s.Routes, out, true, s.Commit)
}

// routeTo points the proxy at routes, instances of release; a cutover
// also records which release is active (commit: the operation's target,
// at its commit point).
func (r *run) routeTo(ctx context.Context, release string, routes []string, out *stepOutput, cutover, commit bool) error {
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
	// The operation claims the hosts of this release (claimHosts), so no
	// other app can take one between this check and the routing below.
	if err := r.e.checkHosts(rel.App, rel.Spec, true); err != nil {
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

func (r *run) stop(ctx context.Context, ids []string, out *stepOutput) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := r.removeInstance(ctx, id); err != nil {
				errs[i] = err
				return
			}
			out.Printf("stopped %s in %s", id, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *run) removeInstance(ctx context.Context, id string) error {
	var err error
	for _, rt := range r.e.runtimes {
		err = rt.Remove(ctx, id)
		if err == nil || !errors.Is(err, runtime.ErrNotFound) {
			break
		}
	}
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	r.e.st.SetInstanceState(ctx, id, store.InstanceRemoved)
	return nil
}

// singleton stops the old instance of a singleton service, then starts the
// new one: at most one runs at any moment. A routed one (a stop-first web)
// was unrouted by the cutover, so its requests are held by the proxy: its
// old instance drains first, and the new one is routed once it passes its
// health check.
func (r *run) singleton(ctx context.Context, s plan.Singleton, out *stepOutput) error {
	if s.Routed && len(s.Old) > 0 {
		r.drainIDs(ctx, s.Old, s.Drain, out)
	}
	if err := r.stop(ctx, s.Old, out); err != nil {
		return err
	}
	if s.SkipStart {
		return nil
	}
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	svc := rel.Spec.Services[s.Service]
	id := runtime.InstanceID(rel.App, s.Service, rel.ID(), s.Index, runtime.KindService)
	w, unwatch := r.e.watch(func(ev runtime.Event) bool { return ev.Type == runtime.EventCrash && ev.Instance == id })
	defer unwatch()
	in, err := r.startInstance(ctx, rel, s.Service, s.Index)
	if err != nil {
		return err
	}
	out.Printf("started %s %s", in.ID, addrNote(in))
	g := s.Gate.Resolve(rel.Artifact.Healthcheck, rel.Artifact.HealthcheckWait)
	if s.Gate.Else != nil {
		out.Printf("%s: %s", s.Service, g)
	}
	if g.Kind != "started" {
		if err := r.gateWatching(ctx, []gated{{in: in, gate: g, timeout: plan.HealthTimeout(svc.Health), host: probeHost(rel.Spec, s.Service)}}, w, out); err != nil {
			return err
		}
	}
	if !s.Routed {
		return nil
	}
	return r.routeTo(ctx, s.Release, s.Routes, out, false, false)
}

// monitor watches the target for the monitor window: a crash of any of its
// instances or a failed health check of a routed one fails the step (and
// the deploy rolls back).
//
// Crashes are watched from the cutover on (run.crashes): the steps between
// the cutover and the monitor (a stop-first web starting, old workers
// stopping) take time, and traffic already reaches the target then.
func (r *run) monitor(ctx context.Context, s plan.Monitor, out *stepOutput) error {
	w := r.crashes
	if w == nil || s.Release != r.rel.ID() {
		var unwatch func()
		w, unwatch = r.e.watch(crashOf(r.rel.App, s.Release))
		defer unwatch()
	}
	deadline := time.NewTimer(s.For)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ErrInterrupted
		case <-deadline.C:
			out.Printf("%s stayed healthy for %s", s.Release, s.For)
			if w == r.crashes && r.unwatchCrashes != nil {
				// The window is over: a later crash is restarted like any
				// other, it no longer rolls the deploy back.
				r.unwatchCrashes()
				r.crashes, r.unwatchCrashes = nil, nil
			}
			return nil
		case ev := <-w.ch:
			return &instanceError{id: ev.Instance, err: fmt.Errorf("%s crashed during the monitor window (%s)", ev.Instance, ev.Message)}
		case <-tick.C:
			for _, ts := range r.e.proxy.Status(r.rel.App) {
				if ts.Routed && r.routed[ts.ID] == s.Release && !ts.Healthy {
					// An instance that exits closes its port before its
					// runtime reports the exit: give the report a moment,
					// so that the deploy says "crashed (exit status 3)"
					// rather than "connection refused" when that is what
					// happened.
					select {
					case ev := <-w.ch:
						return &instanceError{id: ev.Instance, err: fmt.Errorf("%s crashed during the monitor window (%s)", ev.Instance, ev.Message)}
					case <-time.After(crashAttribution):
					case <-ctx.Done():
						return ErrInterrupted
					}
					return &instanceError{id: ts.ID, err: fmt.Errorf("%s failed its health check during the monitor window: %s", ts.ID, ts.LastError)}
				}
			}
		}
	}
}

// crashOf matches the crashes of release's service instances.
func crashOf(app, release string) func(runtime.Event) bool {
	return func(ev runtime.Event) bool {
		return ev.Type == runtime.EventCrash && ev.App == app && ev.Release == release && ev.Kind == runtime.KindService
	}
}

// crashAttribution is how long the monitor waits, after a failed health
// check, for a crash report that explains it. The proxy already sends no
// traffic to the failed instance meanwhile.
const crashAttribution = 2 * time.Second

func (r *run) drain(ctx context.Context, s plan.Drain, out *stepOutput) error {
	r.drainIDs(ctx, s.IDs, s.Timeout, out)
	return r.stop(ctx, s.IDs, out)
}

// drainIDs waits until the proxy has no request in flight to the given
// unrouted instances, up to timeout (the plan's); the rest are cut when the
// instances stop.
func (r *run) drainIDs(ctx context.Context, ids []string, timeout time.Duration, out *stepOutput) {
	if timeout <= 0 {
		timeout = spec.DefaultDrainTimeout
	}
	out.Printf("draining %s (up to %s)", strings.Join(ids, " "), timeout)
	start := time.Now()
	if left := r.e.proxy.Drain(ctx, ids, timeout); left > 0 {
		out.Printf("drain timeout (%s): %d requests still in flight are cut", timeout, left)
	} else {
		out.Printf("drained in %s", time.Since(start).Round(time.Millisecond))
	}
}

func (r *run) activate(ctx context.Context, s plan.Activate, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	return r.e.st.Activate(ctx, rel.App, rel.Version)
}

// adopt makes the app's config follow the release the operation activated
// (see adoptConfig).
func (r *run) adopt(ctx context.Context, s plan.Adopt) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	return r.e.adoptConfig(ctx, r.from, rel)
}

// prune removes the artifacts of the releases the plan lists (those
// beyond the retention window once the target is active), and old logs; a
// failure is a warning, the operation has succeeded.
func (r *run) prune(ctx context.Context, s plan.Prune, out *stepOutput) error {
	if s.Releases == nil { // planned without the history: decided here
		freed, err := r.e.pruneArtifacts(ctx, r.rel.App)
		for _, f := range freed {
			out.Printf("pruned %s", f)
		}
		if err != nil {
			out.Printf("warning: pruning old artifacts: %v", err)
		}
		return nil
	}
	for _, id := range s.Releases {
		rel, err := r.release(ctx, id)
		if err != nil {
			out.Printf("warning: pruning %s: %v", id, err)
			continue
		}
		rt, err := r.e.Runtime(rel.Artifact.Runtime)
		if err == nil {
			err = rt.RemoveArtifact(ctx, rel.Artifact)
		}
		if err != nil {
			out.Printf("warning: pruning the artifact of %s: %v", id, err)
			continue
		}
		out.Printf("pruned %s (%s)", id, rel.Artifact.Ref)
	}
	if a, err := r.e.st.GetApp(ctx, r.rel.App); err == nil {
		if _, err := r.e.pruneLogs(ctx, a); err != nil {
			out.Printf("warning: pruning old logs: %v", err)
		}
	}
	return nil
}

// retention is what a plan that makes target active decides its prune
// from: the app's releases, and which of the artifacts it would prune are
// gone already (asked of their runtimes; one that cannot say counts as
// there, and its removal is tried).
func (e *Engine) retention(ctx context.Context, app string, target *store.Release, from int) *plan.Retention {
	history, err := e.st.ListReleases(ctx, app)
	if err != nil {
		return nil // the executor decides
	}
	t := windowRelease(target)
	ret := &plan.Retention{History: windowReleases(history), Target: &t, From: from, Gone: map[string]bool{}}
	for _, rel := range plan.PruneList(ret) {
		if rt, err := e.Runtime(rel.Artifact.Runtime); err == nil {
			if ok, err := rt.ArtifactExists(ctx, rel.Artifact); err == nil && !ok {
				ret.Gone[rel.Artifact.Ref] = true
			}
		}
	}
	return ret
}

// pruneArtifacts removes the artifacts of releases beyond the retention
// window after a successful deploy.
func (e *Engine) pruneArtifacts(ctx context.Context, app string) ([]string, error) {
	rep, err := e.prune(ctx, app, false) // under the deploy's lock
	if rep == nil {
		return nil, err
	}
	var freed []string
	for _, a := range rep.Artifacts {
		freed = append(freed, fmt.Sprintf("%s (%s)", a.Release, a.Ref))
	}
	return freed, err
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, " ")
}
