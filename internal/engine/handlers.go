package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/store"
)

// StepHandler carries out one step of a plan. It decides nothing the step
// does not say: the planner (internal/plan) made every decision, and the
// executor journals the step before it calls the handler and records its
// outcome after.
type StepHandler func(ctx context.Context, x *Exec, s plan.Step) error

// Exec is what a step handler may use of the operation whose step it runs.
type Exec struct {
	r   *execution
	out *stepOutput
}

// App is the app the operation acts on.
func (x *Exec) App() string { return x.r.rel.App }

// Release resolves a release a step names ("v4").
func (x *Exec) Release(ctx context.Context, id string) (*store.Release, error) {
	return x.r.release(ctx, id)
}

// DeployID is the record the operation journals its steps in (0: none,
// a recovery that changed nothing or a destroy).
func (x *Exec) DeployID() int64 {
	if x.r.deploy == nil {
		return 0
	}
	return x.r.deploy.ID
}

// Output is where the step's output goes: streamed as events line by
// line, and its tail journaled with the step.
func (x *Exec) Output() io.Writer { return x.out }

// Printf writes one line of the step's output.
func (x *Exec) Printf(format string, args ...any) { x.out.Printf(format, args...) }

// Handle registers h as the handler of the steps of kind k, in place of
// the one before (the built-in handlers are registered by New). A package
// outside the engine adds its steps this way (internal/backup: the
// restore step); call it before Start.
func (e *Engine) Handle(k plan.Kind, h StepHandler) {
	e.handlersMu.Lock()
	defer e.handlersMu.Unlock()
	e.handlers[k] = h
}

func (e *Engine) handler(k plan.Kind) StepHandler {
	e.handlersMu.RLock()
	defer e.handlersMu.RUnlock()
	return e.handlers[k]
}

// On adapts a function of one step type to a StepHandler.
func On[S plan.Step](f func(ctx context.Context, x *Exec, s S) error) StepHandler {
	return func(ctx context.Context, x *Exec, s plan.Step) error {
		t, ok := s.(S)
		if !ok {
			return fmt.Errorf("a %s step is a %T, its handler takes a %T", s.Kind(), s, t)
		}
		return f(ctx, x, t)
	}
}

// builtinHandlers are the engine's own step handlers, one per kind.
func builtinHandlers() map[plan.Kind]StepHandler {
	task := On(func(ctx context.Context, x *Exec, s plan.Task) error { return x.r.task(ctx, s, x.out) })
	return map[plan.Kind]StepHandler{
		plan.KindBuild:     On(func(ctx context.Context, x *Exec, s plan.Build) error { return x.r.build(ctx, x.out) }),
		plan.KindPrepare:   On(func(ctx context.Context, x *Exec, s plan.Prepare) error { return x.r.prepare(ctx, s, x.out) }),
		plan.KindAccessory: On(func(ctx context.Context, x *Exec, s plan.Accessory) error { return x.r.accessory(ctx, s, x.out) }),
		plan.KindRelease:   task,
		plan.KindCheck:     task,
		plan.KindStart:     On(func(ctx context.Context, x *Exec, s plan.Start) error { return x.r.start(ctx, s, x.out) }),
		plan.KindRoute:     On(func(ctx context.Context, x *Exec, s plan.Route) error { return x.r.route(ctx, s, x.out) }),
		plan.KindCutover:   On(func(ctx context.Context, x *Exec, s plan.Cutover) error { return x.r.cutover(ctx, s, x.out) }),
		plan.KindStop:      On(func(ctx context.Context, x *Exec, s plan.Stop) error { return x.r.stop(ctx, s.IDs, x.out) }),
		plan.KindSingleton: On(func(ctx context.Context, x *Exec, s plan.Singleton) error { return x.r.singleton(ctx, s, x.out) }),
		plan.KindMonitor:   On(func(ctx context.Context, x *Exec, s plan.Monitor) error { return x.r.monitor(ctx, s, x.out) }),
		plan.KindDrain:     On(func(ctx context.Context, x *Exec, s plan.Drain) error { return x.r.drain(ctx, s, x.out) }),
		plan.KindKeepWarm:  On(func(ctx context.Context, x *Exec, s plan.KeepWarm) error { return x.r.keepWarm(ctx, s, x.out) }),
		plan.KindServeWarm: On(func(ctx context.Context, x *Exec, s plan.ServeWarm) error { return x.r.serveWarm(ctx, s, x.out) }),
		plan.KindActivate:  On(func(ctx context.Context, x *Exec, s plan.Activate) error { return x.r.activate(ctx, s, x.out) }),
		plan.KindAdopt:     On(func(ctx context.Context, x *Exec, s plan.Adopt) error { return x.r.adopt(ctx, s) }),
		plan.KindPrune:     On(func(ctx context.Context, x *Exec, s plan.Prune) error { return x.r.prune(ctx, s, x.out) }),
		plan.KindMaintenance: On(func(ctx context.Context, x *Exec, s plan.Maintenance) error {
			return x.r.maintenanceStep(ctx, s, x.out)
		}),
		plan.KindVolumes: On(func(ctx context.Context, x *Exec, s plan.DeleteVolumes) error {
			return x.r.deleteVolumes(ctx, s, x.out)
		}),
		// Destroy's own steps (destroy.go).
		plan.KindUnroute: On(func(ctx context.Context, x *Exec, s plan.Unroute) error { return x.r.unroute(ctx, s, x.out) }),
		plan.KindArtifacts: On(func(ctx context.Context, x *Exec, s plan.RemoveArtifacts) error {
			return x.r.removeArtifacts(ctx, s, x.out)
		}),
		plan.KindBackups: On(func(ctx context.Context, x *Exec, s plan.DeleteBackups) error {
			return x.r.deleteBackups(ctx, s, x.out)
		}),
		plan.KindForget: On(func(ctx context.Context, x *Exec, s plan.Forget) error { return x.r.forget(ctx, s, x.out) }),
	}
}
