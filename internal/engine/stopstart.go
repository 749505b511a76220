package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/moorage/moorage/internal/plan"

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
	App    string
	Owner  string
	Wait   bool
	DryRun bool
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
	status, err := e.operate(ctx, op, operation{
		App: req.App, Owner: req.Owner, Lock: kind, Wait: req.Wait, DryRun: req.DryRun,
		NotDeployed: func() error { return fmt.Errorf("%s %s: %w; deploy it first", kind, req.App, ErrNotDeployed) },
		Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
			a, cur := l.App, l.Active
			m, err := e.MaintenanceOf(ctx, req.App)
			if err != nil {
				return nil, "", fmt.Errorf("whether %s is stopped: %w", req.App, err)
			}
			stopped := m != nil && m.Stopped
			switch {
			case m != nil && m.Destroying:
				return nil, "", errDestroying(req.App, kind)
			case stop && stopped:
				return nil, "", fmt.Errorf("%s is already stopped (moorage start -a %s starts it)", req.App, req.App)
			case !stop && !stopped:
				return nil, "", fmt.Errorf("%s is not stopped: it runs %s (moorage ps -a %s)", req.App, store.ReleaseID(a.Current), req.App)
			}
			rt, err := e.Runtime(cur.Runtime)
			if err != nil {
				return nil, "", err
			}
			scale, fromScale := a.Formation, plan.StoppedFormation(cur.Spec)
			if stop {
				scale, fromScale = fromScale, scale
			}
			target := e.targetFor(ctx, cur, scale)
			return &execInput{
				app: a, kind: kind, owner: req.Owner, rt: rt,
				target: cur, from: cur, scale: scale, fromScale: fromScale,
				plan: func(observed []runtime.Instance) *plan.Plan {
					in := plan.ConvergeInput{App: req.App, Target: target, From: cur.ID(), Observed: observed, Specs: e.specsOf(ctx, req.App, observed)}
					if stop {
						return plan.StopApp(in)
					}
					return plan.StartApp(in)
				},
				// Under the lock, once run returned: a stop that failed
				// was undone (the instances came back), and so does the
				// app. One the server's own stop interrupted stays
				// recorded as stopped: recovery finishes it.
				done: func(status string) {
					if !stop || status == store.DeploySucceeded || status == StatusPlanned || status == "interrupted" {
						return
					}
					if err := e.SetMaintenance(context.WithoutCancel(ctx), req.App, nil); err != nil {
						op.emit(Event{Type: EventWarn, Text: fmt.Sprintf("%s still shows its stopped page: run `moorage maintenance off -a %s` (%v)", req.App, req.App, err)})
					}
				},
			}, "", nil
		},
	})
	return status, err
}

// maintenanceStep turns the stopped page on (recorded first: a server that
// dies mid-stop recovers the app as stopped) or off.
func (r *execution) maintenanceStep(ctx context.Context, s plan.Maintenance, out *stepOutput) error {
	app := r.rel.App
	if s.On {
		if err := r.e.SetMaintenance(ctx, app, &Maintenance{Message: app + " is stopped.", Stopped: true}); err != nil {
			return err
		}
		out.Printf("%s shows its stopped page", app)
		return nil
	}
	if err := r.e.SetMaintenance(ctx, app, nil); err != nil {
		return err
	}
	out.Printf("%s serves again", app)
	return nil
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
	if m, _ := e.MaintenanceOf(ctx, app); m != nil && m.Destroying {
		return errDestroying(app, what)
	}
	return fmt.Errorf("%s %s: the app is stopped (moorage stop); start it first with `moorage start -a %s`", what, app, app)
}
