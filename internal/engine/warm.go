package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moorage/moorage/internal/health"
	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// A deploy leaves the web instances of the release it replaced running,
// unrouted, for the new release's deploy.keep_warm (plan.KeepWarm): a
// rollback to that release within the time serves from them at once
// (plan.ServeWarm). Then the server stops them (coolDown). Which release
// is warm and until when is read from the store, so a restart keeps them
// warm for the rest of their time.

// warmRelease is plan.WarmRelease for the active release active, from
// the record of the deploy that made it active.
func (e *Engine) warmRelease(ctx context.Context, active *store.Release) (string, time.Time) {
	if active == nil || active.DeployID == 0 || active.Spec == nil {
		return "", time.Time{}
	}
	d, err := e.st.GetDeploy(ctx, active.DeployID)
	if err != nil {
		return "", time.Time{}
	}
	return plan.WarmRelease(plan.WarmInput{Active: active.Version, KeepWarm: active.Spec.Deploy.KeepWarm,
		From: d.FromRelease, Ended: d.EndedAt, Now: time.Now()})
}

// Warm says which release's web instances of app run warm, unrouted, and
// until when ("" when none: no deploy kept one, or its time is over).
func (e *Engine) Warm(ctx context.Context, app string) (string, time.Time) {
	a, err := e.st.GetApp(ctx, app)
	if err != nil || a.Current == 0 {
		return "", time.Time{}
	}
	rel, err := e.st.GetRelease(ctx, app, a.Current)
	if err != nil {
		return "", time.Time{}
	}
	return e.warmRelease(ctx, rel)
}

// keepWarm is the KeepWarm step: nothing stops the instances; the server
// stops them once the time is over.
func (r *execution) keepWarm(ctx context.Context, s plan.KeepWarm, out *stepOutput) error {
	until := time.Now().Add(s.For)
	r.e.scheduleCoolDown(r.rel.App, until)
	out.Printf("%s stay warm, unrouted, until %s", listOrNone(s.IDs), until.UTC().Format(time.RFC3339))
	return nil
}

// serveWarm is the ServeWarm step: each warm instance is probed once with
// its service's gate; those that answer take every route of the target at
// once. It fails only when routing fails: a warm instance that does not
// answer is left out, and with none left for a service nothing is routed
// (the target's own web instances start next and take over at its
// cutover, as in any rollback).
func (r *execution) serveWarm(ctx context.Context, s plan.ServeWarm, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	observed, err := r.e.observe(ctx, rel.App)
	if err != nil {
		return err
	}
	byID := map[string]runtime.Instance{}
	for _, in := range observed {
		byID[in.ID] = in
	}
	var routes []string
	for _, w := range s.Services {
		var ok []string
		for _, id := range w.IDs {
			in, found := byID[id]
			if !found || in.State == runtime.StateExited || in.Addr == "" {
				out.Printf("%s no longer runs: left out", id)
				continue
			}
			if err := r.probeOnce(ctx, rel, w, in); err != nil {
				out.Printf("%s did not answer its probe (%v): left out", id, err)
				continue
			}
			ok = append(ok, id)
		}
		if len(ok) == 0 {
			out.Printf("no warm instance of %s answers: nothing is routed now; %s's own web instances take over at its cutover", w.Service, s.Release)
			return nil
		}
		routes = append(routes, ok...)
	}
	if err := r.e.checkHTTPHosts(rel.App, rel.Spec, true); err != nil {
		return err
	}
	return r.routeTo(ctx, s.Release, routes, out, false, false)
}

// probeOnce checks a warm instance once with its service's gate: an HTTP
// or TCP check, or the image's HEALTHCHECK verdict; a gate that is not a
// probe (min_ready, a command) asks only that it runs, which it does.
func (r *execution) probeOnce(ctx context.Context, rel *store.Release, w plan.WarmService, in runtime.Instance) error {
	svc := rel.Spec.Services[w.Service]
	if svc == nil {
		return fmt.Errorf("%s has no service %s", rel.ID(), w.Service)
	}
	timeout := plan.HealthTimeout(svc.Health)
	switch g := w.Gate.Resolve(rel.Artifact.Healthcheck, rel.Artifact.HealthcheckWait); g.Kind {
	case "http":
		return health.HTTP(nil, in.Addr, probeHost(rel.Spec, w.Service), g.Path, timeout)(ctx)
	case "tcp":
		return health.TCP(in.Addr, timeout)(ctx)
	case "image":
		if in.Health != "healthy" {
			return fmt.Errorf("the image's HEALTHCHECK says %q", in.Health)
		}
	}
	return nil
}

// scheduleCoolDown makes the server stop app's warm web instances at
// until (coolDown), in place of any time set before.
func (e *Engine) scheduleCoolDown(app string, until time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if e.coolTimers == nil {
		e.coolTimers = map[string]*time.Timer{}
	}
	if t := e.coolTimers[app]; t != nil {
		t.Stop()
	}
	e.coolTimers[app] = time.AfterFunc(time.Until(until), func() {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return
		}
		e.wg.Add(1)
		e.mu.Unlock()
		defer e.wg.Done()
		e.coolDown(app)
	})
}

// stopCoolTimers stops every cool-down timer (Close).
func (e *Engine) stopCoolTimers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.coolTimers {
		t.Stop()
	}
}

// coolDownLock is the operation the app's lock names while the server
// stops its warm web (an operation that asked not to wait waits for it
// anyway: lock).
const coolDownLock = "keep-warm over"

// coolDownRetry is how soon a cool-down that could not run (the app's lock
// is held, a runtime did not answer) is tried again.
const coolDownRetry = time.Minute

// coolDown stops app's warm web instances whose time is over, under the
// app's lock: what plan.CoolDown picks (web instances of releases neither
// active nor still warm). A warm release whose time is not over yet is
// left, and its own time set.
func (e *Engine) coolDown(app string) {
	var next time.Time
	err := e.OperateLocked(e.ctx, newOp(), LockedOperation{App: app, Owner: "moorage server (deploy.keep_warm is over)", Lock: coolDownLock, NeedApp: true},
		func(ctx context.Context, a *store.App, active *store.Release) error {
			if active == nil {
				return nil
			}
			observed, err := e.observe(ctx, app)
			if err != nil {
				return err
			}
			warm, until := e.warmRelease(ctx, active)
			next = until
			ids := plan.CoolDown(plan.CoolDownInput{Active: active.ID(), Warm: warm, Observed: observed, Specs: e.specsOf(ctx, app, observed)})
			if len(ids) == 0 {
				return nil
			}
			var errs []error
			for _, id := range ids {
				if err := e.removeInstance(ctx, id); err != nil {
					errs = append(errs, err)
				}
			}
			msg := fmt.Sprintf("stopped the web instances kept warm after the deploy of %s (deploy.keep_warm is over): %s", active.ID(), listOrNone(ids))
			if err := errors.Join(errs...); err != nil {
				msg += "; " + err.Error()
			}
			e.log.Info("keep_warm over", "app", app, "stopped", ids)
			e.st.AddEvent(ctx, store.AppEvent{App: app, Kind: store.EventDeploy, Message: msg})
			return errors.Join(errs...)
		})
	switch {
	case err == nil && !next.IsZero():
		e.scheduleCoolDown(app, next)
	case err == nil, e.ctx.Err() != nil, errors.Is(err, store.ErrNotFound), errors.Is(err, ErrNotDeployed):
	default:
		e.log.Info("keep_warm cool-down postponed", "app", app, "err", err, "retry", coolDownRetry)
		e.scheduleCoolDown(app, time.Now().Add(coolDownRetry))
	}
}
