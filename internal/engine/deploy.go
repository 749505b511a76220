package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// DeployRequest asks for a deploy of an uploaded app.
type DeployRequest struct {
	Spec     *spec.Spec
	SpecYAML string
	// ContextDir is the unpacked upload; the engine owns it from now on.
	ContextDir string
	Runtime    string // overrides the spec's runtime when set
	Owner      string // who asks: "alice@laptop (pid 42)"
	Wait       bool   // wait for the app's lock instead of being refused
	DryRun     bool   // print the plan, change nothing
	// Commit is what ContextDir was checked out from, when known: the
	// release records it.
	Commit *store.Commit
	// Parent is the record this deploy runs for (a pipeline's): the
	// deploy's record names it (store.Deploy.Parent).
	Parent int64
}

// RollbackRequest asks to bring back an earlier release.
type RollbackRequest struct {
	App      string
	To       int // release version; 0 = the release active before the current one
	Owner    string
	Wait     bool
	RunTasks bool // run the release tasks again (off by default)
	DryRun   bool // print the plan, change nothing
}

// Deploy starts a deploy and returns at once; follow the Op for progress.
func (e *Engine) Deploy(req DeployRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		defer os.RemoveAll(req.ContextDir)
		return e.deploy(ctx, op, req)
	})
}

// Rollback starts a rollback and returns at once.
func (e *Engine) Rollback(req RollbackRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.rollback(ctx, op, req)
	})
}

// start runs fn as an operation on the engine's context.
func (e *Engine) start(fn func(context.Context, *Op) (string, error)) *Op {
	op := newOp()
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if closed {
		op.emit(Event{Type: EventDone, Status: store.DeployFailed, Text: ErrClosed.Error()})
		op.finish(store.DeployFailed, ErrClosed)
		return op
	}
	go func() {
		defer e.wg.Done()
		op.end(fn(e.ctx, op))
	}()
	return op
}

// Go runs fn as an operation of its own, outside the engine's operations
// (a pipeline, whose deploy stage is one): its events are kept and read
// with Next like any operation's, and end with a done event.
func Go(fn func(emit func(Event)) (string, error)) *Op {
	op := newOp()
	go func() { op.end(fn(op.emit)) }()
	return op
}

// end emits the done event of an operation that returned status and err,
// and finishes it.
func (op *Op) end(status string, err error) {
	text, code := "", ""
	if err != nil {
		text = err.Error()
		var le *store.LockedError
		if errors.As(err, &le) {
			code = CodeLocked
		}
	}
	op.emit(Event{Type: EventDone, Status: status, Text: text, Code: code})
	op.finish(status, err)
}

func (e *Engine) deploy(ctx context.Context, op *Op, req DeployRequest) (string, error) {
	sp := req.Spec
	app := sp.App
	return e.operate(ctx, op, operation{
		App: app, Owner: req.Owner, Lock: "deploy", Wait: req.Wait, DryRun: req.DryRun, RefuseStopped: true,
		// Fail fast, before waiting for the lock; claimHTTPHosts checks again,
		// atomically, under it.
		Check: func(ctx context.Context) error {
			if err := e.checkHTTPHosts(app, sp, true); err != nil {
				return fmt.Errorf("cannot deploy %s: %w", app, err)
			}
			if err := e.checkSecretsSet(ctx, sp); err != nil {
				return fmt.Errorf("cannot deploy %s: %w", app, err)
			}
			return nil
		},
		Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
			return e.decideDeploy(ctx, op, req, l)
		},
	})
}

// decideDeploy is a deploy's part of the operation: the new release, on
// the runtime chosen.
func (e *Engine) decideDeploy(ctx context.Context, op *Op, req DeployRequest, l *loaded) (*execInput, string, error) {
	app, from := req.Spec.App, l.Active
	// The app stays on its active release's runtime unless asked to move.
	rc, err := chooseRuntime(req, from)
	if err != nil {
		return nil, "", fmt.Errorf("cannot deploy %s: %w", app, err)
	}
	sp, rtName := rc.Spec, rc.Name
	rt, err := e.Runtime(rtName)
	if err != nil {
		return nil, "", err
	}
	// Claim the hosts before anything changes (even the app's record). A
	// dry run only checks them (dryRun), as it changes nothing.
	release := func() {}
	if !l.DryRun {
		if release, err = e.claimHTTPHosts(app, sp, specOf(from)); err != nil {
			return nil, "", fmt.Errorf("cannot deploy %s: %w", app, err)
		}
	}
	in, err := e.deployInput(ctx, op, req, l, rc, rt)
	if err != nil {
		release()
		return nil, "", err
	}
	in.done = func(status string) {
		release()
		if status == store.DeploySucceeded && in.app.Runtime != rtName {
			e.st.SetRuntime(context.WithoutCancel(ctx), app, rtName)
		}
	}
	return in, "", nil
}

func (e *Engine) deployInput(ctx context.Context, op *Op, req DeployRequest, l *loaded, rc *plan.RuntimeChoice, rt runtime.Runtime) (*execInput, error) {
	app, from := req.Spec.App, l.Active
	sp, rtName := rc.Spec, rc.Name
	if rc.Note != "" {
		op.emit(Event{Type: EventInfo, Text: rc.Note})
	}
	if rc.From != "" {
		for _, w := range e.moveWarnings(ctx, from, rtName) {
			op.emit(Event{Type: EventWarn, Text: w})
		}
	}
	for _, w := range sp.Warnings() {
		op.emit(Event{Type: EventWarn, Text: sp.File + ": " + w})
	}
	a := l.App
	if l.DryRun {
		if a == nil {
			a = &store.App{Name: app, Runtime: rtName}
		}
	} else {
		var err error
		if a, err = e.st.EnsureApp(ctx, app, rtName); err != nil {
			return nil, err
		}
		if a.Current == 0 && a.Runtime != rtName {
			e.st.SetRuntime(ctx, app, rtName)
		}
	}
	cfg, err := e.configSnapshot(ctx, app)
	if err != nil {
		return nil, err
	}
	rel := &store.Release{
		App: app, Cause: "deploy", Runtime: rtName,
		Artifact: runtime.Artifact{Runtime: rtName},
		Spec:     sp, SpecYAML: req.SpecYAML, Config: cfg,
		Formation: plan.Formation(sp, a.Formation),
		Commit:    req.Commit,
	}
	return &execInput{
		app: a, kind: store.KindDeploy, owner: req.Owner, parent: req.Parent, rt: rt,
		target: rel, from: from, build: true, runTasks: true, contextDir: req.ContextDir, scale: a.Formation,
		hostsClaimed: true,
	}, nil
}

func (e *Engine) rollback(ctx context.Context, op *Op, req RollbackRequest) (string, error) {
	return e.operate(ctx, op, operation{
		App: req.App, Owner: req.Owner, Lock: "rollback", Wait: req.Wait, DryRun: req.DryRun, RefuseStopped: true,
		Check: func(ctx context.Context) error {
			if _, err := e.st.GetApp(ctx, req.App); err != nil {
				return fmt.Errorf("rollback %s: %w", req.App, err)
			}
			return nil
		},
		NotDeployed: func() error { return fmt.Errorf("rollback %s: %w", req.App, ErrNotDeployed) },
		Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
			in, err := e.decideRollback(ctx, op, req, l)
			return in, "", err
		},
	})
}

// decideRollback is a rollback's part of the operation: a new release
// made of an earlier one.
func (e *Engine) decideRollback(ctx context.Context, op *Op, req RollbackRequest, l *loaded) (*execInput, error) {
	a, from := l.App, l.Active
	src, err := e.rollbackSource(ctx, a, req.To)
	if err != nil {
		return nil, err
	}
	rt, err := e.Runtime(src.Runtime)
	if err != nil {
		return nil, err
	}
	if src.Runtime != from.Runtime {
		if err := checkMove(from, src.Runtime, "roll back to a release that ran on "+from.Runtime); err != nil {
			return nil, fmt.Errorf("rollback to %s: %w", src.ID(), err)
		}
		for _, w := range e.moveWarnings(ctx, from, src.Runtime) {
			op.emit(Event{Type: EventWarn, Text: w})
		}
	}
	if ok, err := rt.ArtifactExists(ctx, src.Artifact); err != nil {
		return nil, fmt.Errorf("rollback to %s: cannot check that its artifact %s is kept: %w; retry once the %s runtime answers", src.ID(), src.Artifact.Ref, err, src.Runtime)
	} else if !ok {
		return nil, fmt.Errorf("rollback to %s: its artifact %s was pruned (%w; keep_releases counts artifacts); %s, or deploy that code again", src.ID(), src.Artifact.Ref, runtime.ErrArtifactGone, e.rollbackTargets(ctx, a))
	}
	rel := &store.Release{
		App: req.App, Cause: "rollback to " + src.ID(), Runtime: src.Runtime,
		Artifact: src.Artifact, Spec: src.Spec, SpecYAML: src.SpecYAML, Config: src.Config,
		Formation: plan.Formation(src.Spec, a.Formation),
		Source:    src.Version, Commit: src.Commit,
	}
	return &execInput{
		app: a, kind: store.KindRollback, owner: req.Owner, rt: rt,
		target: rel, from: from, runTasks: req.RunTasks, scale: a.Formation,
		done: func(status string) {
			if status == store.DeploySucceeded && a.Runtime != rel.Runtime {
				e.st.SetRuntime(context.WithoutCancel(ctx), req.App, rel.Runtime)
			}
		},
	}, nil
}

// rollbackSource is the release a rollback brings back
// (plan.RollbackSource), with each refusal worded for the user.
func (e *Engine) rollbackSource(ctx context.Context, a *store.App, to int) (*store.Release, error) {
	rels, err := e.st.ListReleases(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	history := make([]plan.ReleaseStatus, len(rels))
	byVersion := map[int]*store.Release{}
	for i, r := range rels {
		history[i] = plan.ReleaseStatus{Version: r.Version, Status: r.Status}
		byVersion[r.Version] = r
	}
	v, err := plan.RollbackSource(a.Current, to, history)
	switch {
	case errors.Is(err, plan.ErrAlreadyActive):
		return nil, fmt.Errorf("%s is already the active release of %s", store.ReleaseID(to), a.Name)
	case errors.Is(err, plan.ErrNoSuchRelease):
		return nil, fmt.Errorf("rollback to %s: %w; %s", store.ReleaseID(to), ErrNoRelease, e.rollbackTargets(ctx, a))
	case errors.Is(err, plan.ErrNeverServed):
		return nil, fmt.Errorf("rollback to %s: it never served (status %s); %s", store.ReleaseID(to), byVersion[to].Status, e.rollbackTargets(ctx, a))
	case errors.Is(err, plan.ErrNoEarlier):
		return nil, fmt.Errorf("rollback %s: %w: no earlier release served before %s", a.Name, ErrNoRelease, store.ReleaseID(a.Current))
	case err != nil:
		return nil, err
	}
	return e.st.GetRelease(ctx, a.Name, v)
}

// rollbackTargets says which releases of a rollback can bring back: those
// that served before the current one and whose artifact is still kept.
func (e *Engine) rollbackTargets(ctx context.Context, a *store.App) string {
	rels, err := e.st.ListReleases(ctx, a.Name)
	if err != nil {
		return "see `moorage releases` for the releases kept"
	}
	var ids []string
	for _, r := range rels { // newest first
		if r.Version == a.Current || r.Status != store.ReleaseRetired {
			continue
		}
		if rt, err := e.Runtime(r.Runtime); err == nil {
			ok, err := rt.ArtifactExists(ctx, r.Artifact)
			if err != nil {
				return fmt.Sprintf("cannot tell which releases are kept: the %s runtime does not answer (%v); see `moorage releases`", r.Runtime, err)
			}
			if !ok {
				continue
			}
		}
		ids = append(ids, r.ID())
	}
	if len(ids) == 0 {
		return fmt.Sprintf("no earlier release of %s is kept to roll back to", a.Name)
	}
	return "releases to roll back to: " + strings.Join(ids, ", ")
}

// formation is the replica count of every service: the spec's, overridden
// by `moorage scale`.
func (e *Engine) configSnapshot(ctx context.Context, app string) (store.Config, error) {
	vars, err := e.st.GetConfig(ctx, app)
	if err != nil {
		return store.Config{}, err
	}
	return configOf(vars), nil
}

// accessoryHash identifies an accessory's spec: a change restarts it.
func accessoryHash(a *spec.Accessory) string {
	b, _ := json.Marshal(a)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func specOf(r *store.Release) *spec.Spec {
	if r == nil {
		return nil
	}
	return r.Spec
}

// targetOf is what a plan converges to for rel: its spec, and the replicas
// of its services with the app's `moorage scale` overrides applied.
func targetOf(rel *store.Release, scale map[string]int) *plan.Target {
	t := &plan.Target{Release: rel.ID(), Spec: rel.Spec, Formation: plan.Formation(rel.Spec, scale), AccessoryHash: map[string]string{},
		ImageHealthcheck: rel.Artifact.Healthcheck, ImageHealthWait: rel.Artifact.HealthcheckWait}
	for name, a := range rel.Spec.Accessories {
		t.AccessoryHash[name] = accessoryHash(a)
	}
	return t
}

// specsOf loads the specs of the releases the observed instances belong to.
func (e *Engine) specsOf(ctx context.Context, app string, observed []runtime.Instance) map[string]*spec.Spec {
	out := map[string]*spec.Spec{}
	for _, in := range observed {
		if in.Release == "" || out[in.Release] != nil {
			continue
		}
		var v int
		if _, err := fmt.Sscanf(in.Release, "v%d", &v); err != nil {
			continue
		}
		if r, err := e.st.GetRelease(ctx, app, v); err == nil {
			out[in.Release] = r.Spec
		}
	}
	return out
}

var errAbort = errors.New("deploy aborted")
