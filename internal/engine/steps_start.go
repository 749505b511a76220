package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/health"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

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

func (r *execution) start(ctx context.Context, s plan.Start, out *stepOutput) error {
	var wait []gated
	ids := map[string]bool{}
	for _, st := range s.Starts {
		for _, idx := range st.Indices {
			ids[runtime.InstanceID(r.rel.App, st.Service, st.Release, idx, runtime.KindService)] = true
		}
	}
	w, unwatch := r.e.watch(func(ev runtime.InstanceEvent) bool { return ev.Type == runtime.EventCrash && ids[ev.Instance] })
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

func (r *execution) startInstance(ctx context.Context, rel *store.Release, service string, idx int) (runtime.Instance, error) {
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
func (r *execution) gate(ctx context.Context, wait []gated) error {
	ids := map[string]bool{}
	for _, g := range wait {
		ids[g.in.ID] = true
	}
	w, unwatch := r.e.watch(func(ev runtime.InstanceEvent) bool { return ev.Type == runtime.EventCrash && ids[ev.Instance] })
	defer unwatch()
	return r.gateWatching(ctx, wait, w, nil)
}

func (r *execution) gateWatching(ctx context.Context, wait []gated, w *watcher, out *stepOutput) error {
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
				var crashed *instanceError
				if cause := context.Cause(gctx); cause != nil && !errors.Is(cause, context.Canceled) {
					errs[i] = cause
				} else if !errors.As(errs[i], &crashed) {
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

func (r *execution) waitGate(ctx context.Context, g gated) error {
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
			if g.gate.Within <= 0 {
				return nil // "started": the monitor window watches it
			}
			return r.stayedUp(ctx, g)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return health.WaitReady(ctx, check, g.gate.Interval, g.gate.Within)
}

// stayedUp confirms, once an instance's min_ready is over, that it stayed
// up all along: running, and not restarted since it started. The crash
// event alone cannot say so: a loaded Docker Engine reports an exit after
// the wait may have ended, and the deploy would go on to its cutover with
// a worker that never worked.
func (r *execution) stayedUp(ctx context.Context, g gated) error {
	// The runtime that started it (r.rt) answers, not every runtime: a
	// Docker Engine that does not answer must not fail a process deploy.
	ins, err := r.rt.List(ctx, runtime.Filter{App: r.rel.App})
	if err != nil {
		return fmt.Errorf("cannot tell whether %s stayed up for its min_ready of %s, the %s runtime did not answer: %w; nothing was cut over: deploy again once it answers", g.in.ID, g.gate.Within, r.rt.Name(), err)
	}
	i := slices.IndexFunc(ins, func(in runtime.Instance) bool { return in.ID == g.in.ID })
	switch {
	case i < 0:
		return &instanceError{id: g.in.ID, err: fmt.Errorf("%s crashed before it became ready (it is gone, within its min_ready of %s)", g.in.ID, g.gate.Within)}
	case ins[i].State != runtime.StateRunning || ins[i].Restarts > g.in.Restarts:
		return &instanceError{id: g.in.ID, err: fmt.Errorf("%s crashed before it became ready (it is %s, restarted %d times, within its min_ready of %s)", g.in.ID, ins[i].State, ins[i].Restarts-g.in.Restarts, g.gate.Within)}
	}
	return nil
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

// singleton stops the old instance of a singleton service, then starts the
// new one: at most one runs at any moment. A routed one (a stop-first web)
// was unrouted by the cutover, so its requests are held by the proxy: its
// old instance drains first, and the new one is routed once it passes its
// health check.
func (r *execution) singleton(ctx context.Context, s plan.Singleton, out *stepOutput) error {
	if s.Routed && len(s.Old) > 0 {
		r.drainIDs(ctx, s.Old, s.Drain, out)
	}
	if err := r.stop(ctx, s.Old, out); err != nil {
		return err
	}
	for _, l := range s.Lost {
		r.e.stopLost(ctx, l, out)
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
	w, unwatch := r.e.watch(func(ev runtime.InstanceEvent) bool { return ev.Type == runtime.EventCrash && ev.Instance == id })
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
// Crashes are watched from the cutover on (execution.crashes): the steps between
// the cutover and the monitor (a stop-first web starting, old workers
// stopping) take time, and traffic already reaches the target then.
func (r *execution) monitor(ctx context.Context, s plan.Monitor, out *stepOutput) error {
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
func crashOf(app, release string) func(runtime.InstanceEvent) bool {
	return func(ev runtime.InstanceEvent) bool {
		return ev.Type == runtime.EventCrash && ev.App == app && ev.Release == release && ev.Kind == runtime.KindService
	}
}

// crashAttribution is how long the monitor waits, after a failed health
// check, for a crash report that explains it. The proxy already sends no
// traffic to the failed instance meanwhile.
const crashAttribution = 2 * time.Second
