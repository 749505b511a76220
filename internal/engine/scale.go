package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// ScaleRequest changes how many instances of services run.
type ScaleRequest struct {
	App      string
	Replicas map[string]int
	Owner    string
	Wait     bool
	DryRun   bool // print the plan, change nothing
}

// Scale applies new replica counts to the active release at once: new
// instances start health-gated and join the routes, extra ones are drained
// and stopped gracefully. It creates no release; the counts are kept for
// later deploys and rollbacks, and the operation is recorded in history.
func (e *Engine) Scale(req ScaleRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.scale(ctx, op, req)
	})
}

func (e *Engine) scale(ctx context.Context, op *Op, req ScaleRequest) (string, error) {
	return e.operate(ctx, op, operation{
		App: req.App, Owner: req.Owner, Lock: "scale", Wait: req.Wait, DryRun: req.DryRun, RefuseStopped: true,
		Check: func(context.Context) error {
			if len(req.Replicas) == 0 {
				return fmt.Errorf("nothing to scale: give SERVICE=N pairs, e.g. web=3 worker=2")
			}
			return nil
		},
		NotDeployed: func() error { return fmt.Errorf("scale %s: %w; deploy it first", req.App, ErrNotDeployed) },
		Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
			in, err := e.decideScale(ctx, req, l)
			return in, "", err
		},
	})
}

// decideScale is a scale's part of the operation: the active release with
// the new replica counts, converged in place.
func (e *Engine) decideScale(ctx context.Context, req ScaleRequest, l *loaded) (*execInput, error) {
	a, cur := l.App, l.Active
	next := map[string]int{}
	for k, v := range a.Formation {
		next[k] = v
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(req.Replicas)) {
		n := req.Replicas[name]
		svc := cur.Spec.Services[name]
		switch {
		case svc == nil:
			return nil, fmt.Errorf("%s has no service %q (services: %s)", cur.ID(), name, strings.Join(cur.Spec.ServiceNames(), ", "))
		case n < 0 || n > 1000:
			return nil, fmt.Errorf("%s=%d: replicas must be between 0 and 1000", name, n)
		case svc.Singleton && n > 1:
			return nil, fmt.Errorf("%s is a singleton: it runs 0 or 1 instance, never %d (remove `singleton: true` from the spec to run several)", name, n)
		}
		next[name] = n
		parts = append(parts, fmt.Sprintf("%s=%d", name, n))
	}
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return nil, err
	}
	if !l.DryRun {
		if err := e.st.SetFormation(ctx, req.App, next); err != nil {
			return nil, err
		}
		e.st.AddEvent(ctx, store.AppEvent{App: req.App, Kind: store.EventScale, Message: "scale " + strings.Join(parts, " ")})
	}
	target := e.targetFor(ctx, cur, next)
	return &execInput{
		app: a, kind: store.KindScale, owner: req.Owner, rt: rt,
		target: cur, from: cur, scale: next, fromScale: a.Formation,
		plan: func(observed []runtime.Instance) *plan.Plan {
			warm, _ := e.warmRelease(ctx, cur)
			return plan.Scale(plan.ConvergeInput{App: req.App, Target: target, From: cur.ID(), Observed: observed, Specs: e.specsOf(ctx, req.App, observed),
				Retention: e.retention(ctx, req.App, cur, cur.Version), Warm: warm})
		},
	}, nil
}
