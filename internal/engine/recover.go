package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// recover runs at start. The store's active release of every app is the
// truth (the cutover commits it); what runs is observed from the runtimes
// (which re-adopted their instances) and converged to it: instances of a
// deploy that had not cut over are removed, one that had is finished,
// instances that died while the server was down are started again, and the
// proxy routes to what serves. Then the interrupted deploys' records are
// closed and stale locks cleared.
// maxParallelRecovery bounds the apps recovered at once at server start.
const maxParallelRecovery = 8

func (e *Engine) recover(ctx context.Context) error {
	stale, err := e.st.ClearStaleLocks(ctx, e.server)
	if err != nil {
		return err
	}
	for _, l := range stale {
		e.log.Info("cleared stale lock", "app", l.App, "owner", l.Owner, "operation", l.Operation, "since", l.AcquiredAt)
	}
	// Before anything is reconciled: the hooks (internal/backup puts back a
	// volume an interrupted restore was swapping, and resumes instances a
	// backup paused).
	for _, h := range e.hooksCopy() {
		if h.Recover != nil {
			h.Recover(ctx)
		}
	}
	running, err := e.st.RunningDeploys(ctx)
	if err != nil {
		return err
	}
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		return err
	}
	var errs []error
	deferred := map[string]bool{}
	// App by app, side by side: one slow app (an instance that ignores its
	// stop signal for its whole stop_timeout) delays no other app. At most
	// maxParallelRecovery at once: a server with hundreds of apps does not
	// start all their instances and health checks in the same second.
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallelRecovery)
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			later, err := e.recoverApp(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			deferred[a.Name] = later
			if err != nil {
				e.log.Error("recovery failed", "app", a.Name, "err", err)
				e.st.AddEvent(ctx, store.AppEvent{App: a.Name, Kind: store.EventError, Message: "recovery at server start failed: " + err.Error()})
				errs = append(errs, fmt.Errorf("recover %s: %w", a.Name, err))
			}
		}()
	}
	wg.Wait()
	// Close the records of deploys a crash interrupted (those of an app
	// whose runtime is not reachable yet once RecoverRuntime converged it).
	for _, d := range running {
		if deferred[d.App] {
			continue
		}
		if err := e.closeInterrupted(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("recovery: %v", errs)
	}
	return nil
}

// closeInterrupted closes the record of deploy d, which a crash
// interrupted, once its app was converged to its active release.
func (e *Engine) closeInterrupted(ctx context.Context, d *store.Deploy) error {
	if d.Kind == store.KindPipeline {
		return nil // its runner closes it (pipeline.CloseInterrupted)
	}
	a, err := e.st.GetApp(ctx, d.App)
	if err != nil {
		return nil
	}
	status, reason, finished := plan.InterruptedOutcome(plan.Interrupted{Kind: d.Kind, Phase: d.Phase, Release: d.Release,
		FromRelease: d.FromRelease, Cutover: d.Cutover, Current: a.Current})
	if d.Release != 0 && a.Current != d.Release {
		e.st.SetReleaseStatus(ctx, d.App, d.Release, store.ReleaseFailed)
	}
	var errs []error
	if finished {
		// Finished: the app's config follows the release, as the
		// activate step would have done.
		if err := e.adoptInterrupted(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.st.FinishDeploy(ctx, d.ID, status, reason); err != nil {
		errs = append(errs, err)
	}
	e.st.AddEvent(ctx, store.AppEvent{App: d.App, Kind: store.EventRecover, Message: fmt.Sprintf("deploy #%d: %s", d.ID, reason)})
	e.log.Info("recovered interrupted deploy", "app", d.App, "deploy", d.ID, "status", status, "reason", reason)
	return errors.Join(errs...)
}

// recoverApp converges app a to its active release. deferred says it could
// not yet: its runtime has not reached its engine (RecoverRuntime does it
// once it has).
func (e *Engine) recoverApp(ctx context.Context, a *store.App) (deferred bool, err error) {
	if m, err := e.MaintenanceOf(ctx, a.Name); err == nil && m != nil && m.Destroying {
		// A destroy a crash interrupted: nothing of it starts again, and
		// running destroy again finishes the job.
		msg := fmt.Sprintf("%s was being destroyed when the server stopped: nothing of it is started; run `moorage apps destroy %s --yes` to finish", a.Name, a.Name)
		e.log.Warn("interrupted destroy", "app", a.Name)
		e.st.AddEvent(ctx, store.AppEvent{App: a.Name, Kind: store.EventRecover, Message: msg})
		return false, nil
	}
	rel, err := e.activeRelease(ctx, a)
	if err != nil {
		return false, err
	}
	rt := e.runtimes[appRuntime(a, rel)]
	if rt == nil {
		for _, x := range e.runtimes {
			rt = x
			break
		}
	}
	if !connected(rt) {
		// A Docker Engine that has not answered yet: what runs there cannot
		// be seen, so nothing is planned now. The runtime keeps trying and
		// RecoverRuntime converges the app once it connects.
		msg := fmt.Sprintf("the %s runtime is not reachable yet: %s is brought back to %s once it is (the server keeps trying)", rt.Name(), a.Name, store.ReleaseID(a.Current))
		e.log.Warn("recovery waits for its runtime", "app", a.Name, "runtime", rt.Name())
		e.st.AddEvent(ctx, store.AppEvent{App: a.Name, Kind: store.EventRecover, Message: msg})
		return true, nil
	}
	observed, err := e.observe(ctx, a.Name)
	if err != nil {
		return false, err
	}
	var target *plan.Target
	if rel != nil {
		target = e.targetFor(ctx, rel, a.Formation)
	}
	stopped, err := e.Stopped(ctx, a.Name)
	if err != nil {
		return false, err
	}
	// The release kept warm after the last deploy stays so for the rest of
	// its time (deploy.keep_warm); the server stops it then.
	warm, until := e.warmRelease(ctx, rel)
	if warm != "" && !stopped {
		e.scheduleCoolDown(a.Name, until)
	}
	p := plan.Converge(plan.ConvergeInput{
		App: a.Name, Kind: "recover", Target: target, From: store.ReleaseID(a.Current),
		Observed: observed, Specs: e.specsOf(ctx, a.Name, observed), Unrouted: true, Stopped: stopped, Warm: warm,
	})
	// Journal the recovery like any operation when it changes something.
	rec := &store.Deploy{App: a.Name, Kind: store.KindRecover, Owner: "moorage server (recovery at start)", Release: a.Current, FromRelease: a.Current}
	if !p.Quiet() {
		if err := e.st.CreateDeploy(ctx, rec); err != nil {
			return false, err
		}
		e.st.SetDeployPlan(ctx, rec.ID, p.String())
		e.log.Info("recovering", "app", a.Name, "plan", p.String())
	}
	op := newOp()
	r := &execution{e: e, op: op, deploy: rec, rel: rel, rt: rt, routed: map[string]string{}, known: map[string]*store.Release{}, undoing: true, prefix: "recover:"}
	if rel != nil {
		r.known[rel.ID()] = rel
	} else {
		r.rel = &store.Release{App: a.Name}
	}
	err = r.stepsQuiet(ctx, p.Steps, rec.ID != 0)
	held := p.Held()
	if rec.ID != 0 {
		status, reason := store.DeploySucceeded, held
		if err != nil {
			status, reason = store.DeployFailed, err.Error()
		}
		e.st.FinishDeploy(ctx, rec.ID, status, reason)
	}
	if err == nil && held != "" {
		e.log.Warn("recovered without a singleton", "app", a.Name, "reason", held)
		e.st.AddEvent(ctx, store.AppEvent{App: a.Name, Kind: store.EventRecover, Message: "recovery at server start: " + held})
	}
	return false, err
}

// activeRelease returns a's active release, nil before its first deploy.
func (e *Engine) activeRelease(ctx context.Context, a *store.App) (*store.Release, error) {
	if a.Current == 0 {
		return nil, nil
	}
	return e.st.GetRelease(ctx, a.Name, a.Current)
}

// appRuntime names the runtime of app a, whose active release is rel (nil
// before its first deploy).
func appRuntime(a *store.App, rel *store.Release) string {
	if rel != nil && rel.Runtime != "" {
		return rel.Runtime
	}
	return a.Runtime
}

// connector is a runtime that may not have reached what runs its
// instances yet: a docker runtime whose engine, or a swarm runtime whose
// manager, has not answered since the server started (seam.Lazy).
type connector interface {
	Connected() bool
	Connect(context.Context) error
}

// connected reports whether rt can see what it runs.
func connected(rt runtime.Runtime) bool {
	c, ok := rt.(connector)
	return !ok || c.Connected()
}

// reach connects rt if it has not reached its engine yet, so that an
// operation plans from what really runs (a plan made blind would start a
// second singleton beside one it cannot see). It fails, saying why, while
// the engine does not answer.
func reach(ctx context.Context, rt runtime.Runtime) error {
	if c, ok := rt.(connector); ok && !c.Connected() {
		return c.Connect(ctx)
	}
	return nil
}

// RecoverRuntime converges the apps of runtime name to their active
// releases, as the recovery at start does, each under its lock (waiting
// for an operation that holds it). The server calls it when a runtime that
// could not be reached at its start connects: a Docker Engine that
// answered later, whose containers may have stopped meanwhile (an engine
// restart stops them, and only moorage restarts them).
func (e *Engine) RecoverRuntime(name string) {
	ctx := e.ctx
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		e.log.Error("recover apps of a reconnected runtime", "runtime", name, "err", err)
		return
	}
	for _, a := range apps {
		if rel, err := e.activeRelease(ctx, a); err == nil && appRuntime(a, rel) != name {
			continue // an error is met again, and reported, under the lock
		}
		lockFailed := false
		err := e.OperateLocked(ctx, newOp(), LockedOperation{
			App: a.Name, Owner: "moorage server (the " + name + " runtime answered)", Lock: "recover", Wait: true, NeedApp: true,
			LockErr: func(err error) error { lockFailed = true; return err },
		}, func(ctx context.Context, a *store.App, rel *store.Release) error {
			return e.recoverIfOn(ctx, a, rel, name)
		})
		switch {
		case lockFailed:
			if ctx.Err() == nil {
				e.log.Error("recover: lock", "app", a.Name, "err", err)
			}
		case err != nil:
			e.log.Error("recovery failed", "app", a.Name, "err", err)
			e.st.AddEvent(ctx, store.AppEvent{App: a.Name, Kind: store.EventError, Message: "recovery once the " + name + " runtime answered failed: " + err.Error()})
		}
	}
}

// recoverIfOn runs the recovery of app a, whose active release is rel
// (nil: none), if it runs on runtime name (read under the app's lock: a
// deploy may just have moved it).
func (e *Engine) recoverIfOn(ctx context.Context, a *store.App, rel *store.Release, name string) error {
	if appRuntime(a, rel) != name {
		return nil
	}
	// What the start could not (internal/backup: instances a backup had
	// paused there).
	for _, h := range e.hooksCopy() {
		if h.RuntimeAnswered != nil {
			h.RuntimeAnswered(ctx, a.Name)
		}
	}
	if _, err := e.recoverApp(ctx, a); err != nil {
		return err
	}
	// The deploys a crash interrupted, left open at start.
	running, err := e.st.RunningDeploys(ctx)
	if err != nil {
		return err
	}
	for _, d := range running {
		if d.App != a.Name {
			continue
		}
		if err := e.closeInterrupted(ctx, d); err != nil {
			return err
		}
	}
	e.log.Info("recovered once its runtime answered", "app", a.Name, "runtime", name)
	e.st.AddEvent(ctx, store.AppEvent{App: a.Name, Kind: store.EventRecover, Message: fmt.Sprintf("the %s runtime answered: %s converged to %s", name, a.Name, store.ReleaseID(a.Current))})
	return nil
}

// adoptInterrupted records the config and runtime of the release of an
// interrupted deploy that recovery finished.
func (e *Engine) adoptInterrupted(ctx context.Context, d *store.Deploy) error {
	rel, err := e.st.GetRelease(ctx, d.App, d.Release)
	if err != nil {
		return err
	}
	var from *store.Release
	if d.FromRelease != 0 {
		if from, err = e.st.GetRelease(ctx, d.App, d.FromRelease); err != nil {
			return err
		}
	}
	if rel.Runtime != "" {
		// As the deploy would have on success (a deploy may move the app).
		if err := e.st.SetRuntime(ctx, d.App, rel.Runtime); err != nil {
			return err
		}
	}
	return e.adoptConfig(ctx, from, rel)
}

// stepsQuiet runs recovery steps, journaled only when they change something.
func (r *execution) stepsQuiet(ctx context.Context, steps []plan.Step, journal bool) error {
	r.unjournaled = !journal
	return r.steps(ctx, steps)
}
