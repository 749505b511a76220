package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// ScaleRequest changes how many instances of services run.
type ScaleRequest struct {
	App      string
	Replicas map[string]int
	Owner    string
	Wait     bool
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
	if len(req.Replicas) == 0 {
		return store.DeployFailed, fmt.Errorf("nothing to scale: give SERVICE=N pairs, e.g. web=3 worker=2")
	}
	unlock, err := e.lock(ctx, op, req.App, req.Owner, "scale", req.Wait)
	if err != nil {
		return store.DeployFailed, err
	}
	defer unlock()
	if err := e.refuseStopped(ctx, req.App, "scale"); err != nil {
		return store.DeployFailed, err
	}
	a, err := e.st.GetApp(ctx, req.App)
	if err != nil {
		return store.DeployFailed, err
	}
	if a.Current == 0 {
		return store.DeployFailed, fmt.Errorf("scale %s: %w; deploy it first", req.App, ErrNotDeployed)
	}
	cur, err := e.st.GetRelease(ctx, req.App, a.Current)
	if err != nil {
		return store.DeployFailed, err
	}
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
			return store.DeployFailed, fmt.Errorf("%s has no service %q (services: %s)", cur.ID(), name, strings.Join(cur.Spec.ServiceNames(), ", "))
		case n < 0 || n > 1000:
			return store.DeployFailed, fmt.Errorf("%s=%d: replicas must be between 0 and 1000", name, n)
		case svc.Singleton && n > 1:
			return store.DeployFailed, fmt.Errorf("%s is a singleton: it runs 0 or 1 instance, never %d (remove `singleton: true` from the spec to run several)", name, n)
		}
		next[name] = n
		parts = append(parts, fmt.Sprintf("%s=%d", name, n))
	}
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return store.DeployFailed, err
	}
	if err := e.st.SetFormation(ctx, req.App, next); err != nil {
		return store.DeployFailed, err
	}
	e.st.AddEvent(ctx, store.Event{App: req.App, Kind: store.EventScale, Message: "scale " + strings.Join(parts, " ")})
	target := targetOf(cur, next)
	return e.run(ctx, op, runInput{
		app: a, kind: store.KindScale, owner: req.Owner, rt: rt,
		target: cur, from: cur, scale: next, fromScale: a.Formation,
		plan: func(observed []runtime.Instance) *Plan {
			return PlanConverge(ConvergeInput{App: req.App, Kind: "scale", Target: target, From: cur.ID(), Observed: observed, Specs: e.specsOf(ctx, req.App, observed)})
		},
	})
}
