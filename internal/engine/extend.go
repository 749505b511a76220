package engine

import (
	"context"
	"io"

	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// What a package built on the engine (internal/backup) uses of it: the
// one entry point of its operations (OperateActive for one that plans
// what runs, OperateLocked for one that journals no plan),
// registered step handlers (Handle), hooks into the server's start and
// recovery, and a few reads. It never reaches into the engine's
// unexported names.

// Hooks let a package built on the engine take part in the server's start
// and recovery without the engine knowing it.
type Hooks struct {
	// Recover runs at start, once stale locks are cleared and before any
	// app is converged to its active release.
	Recover func(ctx context.Context)
	// RuntimeAnswered runs, under app's lock, before app is converged
	// once its runtime answered after the server's start (RecoverRuntime).
	RuntimeAnswered func(ctx context.Context, app string)
	// Background runs once the start's recovery is done, in a goroutine
	// the engine owns: its ctx ends when the engine closes, and Close
	// waits for it.
	Background func(ctx context.Context)
}

// AddHooks adds h to what the engine calls; call it before Start.
func (e *Engine) AddHooks(h Hooks) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hooks = append(e.hooks, h)
}

func (e *Engine) hooksCopy() []Hooks {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Hooks(nil), e.hooks...)
}

// ActiveOperation is an operation on the app's active release that the
// caller plans itself, from the release converged in place (a restore):
// it goes through the engine's one entry point (check, lock, load,
// decide, observe, plan, journal, execute, record).
type ActiveOperation struct {
	App, Owner string
	Lock       string // the operation as the app's lock names it
	Wait       bool   // wait for the lock instead of being refused
	Kind       string // the deploy record's kind (store.Kind*)
	// NotDeployed is the error of an app with no active release.
	NotDeployed func() error
	// Decide runs under the lock with the active release; it may refuse
	// (an error) and reads what it needs, and returns the operation's
	// planner: given the active release converged in place with the
	// app's formation (Target, From, Observed, Specs, Retention set), the
	// plan, pure.
	Decide func(ctx context.Context, active *store.Release) (func(plan.ConvergeInput) *plan.Plan, error)
}

// OperateActive runs o through the engine's entry point (operate).
func (e *Engine) OperateActive(ctx context.Context, op *Op, o ActiveOperation) (string, error) {
	return e.operate(ctx, op, operation{
		App: o.App, Owner: o.Owner, Lock: o.Lock, Wait: o.Wait, NotDeployed: o.NotDeployed,
		Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
			a, cur := l.App, l.Active
			rt, err := e.Runtime(cur.Runtime)
			if err != nil {
				return nil, "", err
			}
			planner, err := o.Decide(ctx, cur)
			if err != nil {
				return nil, "", err
			}
			target := e.targetFor(ctx, cur, a.Formation)
			return &execInput{
				app: a, kind: o.Kind, owner: o.Owner, rt: rt,
				target: cur, from: cur, scale: a.Formation,
				plan: func(observed []runtime.Instance) *plan.Plan {
					warm, _ := e.warmRelease(ctx, cur)
					return planner(plan.ConvergeInput{App: a.Name, Target: target, From: cur.ID(), Observed: observed,
						Specs: e.specsOf(ctx, a.Name, observed), Retention: e.retention(ctx, a.Name, cur, cur.Version), Warm: warm})
				},
			}, "", nil
		},
	})
}

// LockedOperation is an operation that journals no plan (a backup, a
// verify, a prune, a one-off): it goes through the engine's entry point
// for check, lock, load the app and its active release, and then does its
// part itself.
type LockedOperation struct {
	App, Owner string
	// Lock is the operation as the app's lock names it ("backup"); empty,
	// no lock is taken: an operation that changes nothing about the
	// deployment (a one-off, a verify) only reads.
	Lock string
	Wait bool // wait for the lock instead of being refused
	// Check, when set, runs first, before the lock: the checks that need
	// no lock (refused at once, not after a wait).
	Check func(ctx context.Context) error
	// LockErr, when set, words a failure to take the lock.
	LockErr func(error) error
	// NeedApp refuses an app with no record, with the store's error;
	// unset, fn is given a nil app (unless NotDeployed is set).
	NeedApp bool
	// NotDeployed, when set, is the error of an app with no active
	// release; unset, fn is given a nil active release.
	NotDeployed func() error
}

// OperateLocked runs o through the engine's entry point (operate): it
// takes the app's lock (unless o.Lock is empty), loads the app and its
// active release, and runs fn with them under the lock, which it releases
// when fn returns. op is the operation the lock is taken for; nil, one
// nobody follows (a request answered once it is done).
func (e *Engine) OperateLocked(ctx context.Context, op *Op, o LockedOperation, fn func(ctx context.Context, a *store.App, active *store.Release) error) error {
	if op == nil {
		op = newOp()
	}
	_, err := e.operate(ctx, op, operation{
		App: o.App, Owner: o.Owner, Lock: o.Lock, Wait: o.Wait, NoLock: o.Lock == "",
		Check: o.Check, LockErr: o.LockErr, NeedApp: o.NeedApp, NotDeployed: o.NotDeployed,
		Own: func(ctx context.Context, _ *Op, l *loaded) (string, error) {
			if err := fn(ctx, l.App, l.Active); err != nil {
				return store.DeployFailed, err
			}
			return store.DeploySucceeded, nil
		},
	})
	return err
}

// StartOp runs fn as an operation of the engine: its events stream to
// whoever reads the returned Op, its ctx ends when the server stops, and
// Close waits for it.
func (e *Engine) StartOp(fn func(ctx context.Context, op *Op) (string, error)) *Op {
	return e.start(fn)
}

// Emit adds an event to op's stream.
func (op *Op) Emit(ev Event) { op.emit(ev) }

// Output is a writer whose lines are op's output events for step.
func (op *Op) Output(step string) io.Writer { return newStepOutput(op, 0, step) }

// Observe reports what runs of app, on every runtime.
func (e *Engine) Observe(ctx context.Context, app string) ([]runtime.Instance, error) {
	return e.observe(ctx, app)
}

// SpecsOf reads the specs of the releases observed instances belong to.
func (e *Engine) SpecsOf(ctx context.Context, app string, observed []runtime.Instance) map[string]*spec.Spec {
	return e.specsOf(ctx, app, observed)
}

// Runtimes are the engine's runtimes, by name (read only).
func (e *Engine) Runtimes() map[string]runtime.Runtime { return e.runtimes }

// Reach connects rt if it has not reached its engine yet, failing, with
// why, while it does not answer: what a caller then sees of it is real.
func Reach(ctx context.Context, rt runtime.Runtime) error { return reach(ctx, rt) }

// Connected reports whether rt can see what it runs.
func Connected(rt runtime.Runtime) bool { return connected(rt) }

// OpenSecret opens secret k of rel's config (its error names the secret,
// never its value).
func (e *Engine) OpenSecret(rel *store.Release, k string) (string, error) {
	return e.openSecret(rel, k)
}

// Failpoint kills the server at a named point when the tests ask for it
// (MOORAGE_FAILPOINTS, see failpoint).
func (e *Engine) Failpoint(name string) { e.failpoint(name) }
