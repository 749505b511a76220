package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// Operation kinds of `moorage stop` and `moorage start` in the history.
const (
	kindStop  = "stop"
	kindStart = "start"
)

// StopStartRequest stops or starts an app's services.
type StopStartRequest struct {
	App   string
	Owner string
	Wait  bool
}

// StopApp stops every service instance of app's active release (gracefully,
// as a deploy stops old ones) and turns maintenance mode on, marked as
// stopped, so the proxy answers with the maintenance page. The app keeps its
// releases, formation, accessories and volumes; a restarted server keeps it
// stopped. It takes the app's lock and is recorded in the history.
func (e *Engine) StopApp(req StopStartRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.stopStart(ctx, op, req, true)
	})
}

// StartApp starts a stopped app again: its active release with its
// formation, health-gated; maintenance mode goes off once it runs.
func (e *Engine) StartApp(req StopStartRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.stopStart(ctx, op, req, false)
	})
}

// Stopped reports whether app was stopped with `moorage stop`. An error
// reading it is returned, never taken for "not stopped": what asks
// refuses or retries rather than start a stopped app's instances.
func (e *Engine) Stopped(ctx context.Context, app string) (bool, error) {
	m, err := e.MaintenanceOf(ctx, app)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // no app, nothing stopped
	}
	if err != nil {
		return false, fmt.Errorf("whether %s is stopped: %w", app, err)
	}
	return m != nil && m.Stopped, nil
}

func (e *Engine) stopStart(ctx context.Context, op *Op, req StopStartRequest, stop bool) (string, error) {
	kind := kindStart
	if stop {
		kind = kindStop
	}
	unlock, err := e.lock(ctx, op, req.App, req.Owner, kind, req.Wait)
	if err != nil {
		return store.DeployFailed, err
	}
	defer unlock()
	a, err := e.st.GetApp(ctx, req.App)
	if err != nil {
		return store.DeployFailed, err
	}
	if a.Current == 0 {
		return store.DeployFailed, fmt.Errorf("%s %s: %w; deploy it first", kind, req.App, ErrNotDeployed)
	}
	stopped, err := e.Stopped(ctx, req.App)
	if err != nil {
		return store.DeployFailed, err
	}
	switch {
	case stop && stopped:
		return store.DeployFailed, fmt.Errorf("%s is already stopped (moorage start -a %s starts it)", req.App, req.App)
	case !stop && !stopped:
		return store.DeployFailed, fmt.Errorf("%s is not stopped: it runs %s (moorage ps -a %s)", req.App, store.ReleaseID(a.Current), req.App)
	}
	cur, err := e.st.GetRelease(ctx, req.App, a.Current)
	if err != nil {
		return store.DeployFailed, err
	}
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return store.DeployFailed, err
	}
	scale, fromScale := a.Formation, stoppedFormation(cur)
	if stop {
		scale, fromScale = fromScale, scale
		// Recorded first: a server that dies mid-stop recovers the app as
		// stopped.
		if err := e.SetMaintenance(ctx, req.App, &Maintenance{Message: req.App + " is stopped.", Stopped: true}); err != nil {
			return store.DeployFailed, err
		}
	}
	target := targetOf(cur, scale)
	status, err := e.run(ctx, op, runInput{
		app: a, kind: kind, owner: req.Owner, rt: rt,
		target: cur, from: cur, scale: scale, fromScale: fromScale,
		plan: func(observed []runtime.Instance) *Plan {
			return PlanConverge(ConvergeInput{App: req.App, Kind: kind, Target: target, From: cur.ID(), Observed: observed, Specs: e.specsOf(ctx, req.App, observed)})
		},
	})
	if err != nil {
		// A stop that failed was undone: the instances came back, and so
		// does the app. One the server's own stop interrupted stays
		// recorded as stopped: recovery finishes it.
		if stop && !errors.Is(err, ErrInterrupted) {
			if merr := e.SetMaintenance(ctx, req.App, nil); merr != nil {
				err = fmt.Errorf("%w; %s still shows its stopped page: run `moorage maintenance off -a %s` (%v)", err, req.App, req.App, merr)
			}
		}
		return status, err
	}
	if !stop {
		if err := e.SetMaintenance(ctx, req.App, nil); err != nil {
			return store.DeployFailed, err
		}
	}
	return status, nil
}

// stoppedFormation is rel's formation with every service at 0.
func stoppedFormation(rel *store.Release) map[string]int {
	f := map[string]int{}
	for name := range rel.Spec.Services {
		f[name] = 0
	}
	return f
}

// refuseStopped refuses an operation that would start instances of an app
// stopped with `moorage stop`.
func (e *Engine) refuseStopped(ctx context.Context, app, what string) error {
	stopped, err := e.Stopped(ctx, app)
	if err != nil {
		return fmt.Errorf("%s %s: %w; retry", what, app, err)
	}
	if !stopped {
		return nil
	}
	return fmt.Errorf("%s %s: the app is stopped (moorage stop); start it first with `moorage start -a %s`", what, app, app)
}
