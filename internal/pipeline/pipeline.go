// Package pipeline is moorage's server-side continuous deployment: for a
// commit it runs fetch, build, test, check and deploy, one pipeline at a
// time per app, each stage journaled in a deploy record of kind "pipeline"
// with its timing and output. The deploy stage is an ordinary deploy (its
// own record, under the app's deploy lock); notifications follow from the
// records (internal/notify).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/preflight"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Kind is the deploy record kind of a pipeline.
const Kind = store.KindPipeline

// Commit says what is being deployed; the release records it.
type Commit = store.Commit

// Request is a pipeline run.
type Request struct {
	Dir      string // the fetched tree; the pipeline owns it
	SpecName string // default moorage.yaml
	Runtime  string
	Commit   Commit
	Owner    string
	// App, when set, is the app this pipeline is for (a webhook's
	// /hooks/APP): a commit whose spec names another app is refused, or a
	// repository's push could replace another app and read its secrets.
	App string
	// Plan, when set, gives the check stage the plan a deploy would run.
	Plan preflight.PlanFunc
}

// Runner runs pipelines.
type Runner struct {
	Engine  *engine.Engine
	WorkDir string // scratch space for copies of the tree (under the data dir)

	mu   sync.Mutex
	apps map[string]*sync.Mutex
}

func (r *Runner) appLock(app string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps == nil {
		r.apps = map[string]*sync.Mutex{}
	}
	m := r.apps[app]
	if m == nil {
		m = &sync.Mutex{}
		r.apps[app] = m
	}
	return m
}

// ErrFailed is returned when a stage failed.
var ErrFailed = errors.New("pipeline failed")

// Run runs the pipeline of req to its end and emits its progress to emit
// (which must not block). It returns the status of the pipeline record
// (store.DeploySucceeded or store.DeployFailed). It runs on ctx: callers
// pass a context the client going away does not cancel.
func (r *Runner) Run(ctx context.Context, req Request, emit func(engine.Event)) (string, error) {
	defer os.RemoveAll(req.Dir)
	say := func(ev engine.Event) {
		ev.Time = time.Now()
		emit(ev)
	}
	if req.SpecName == "" {
		req.SpecName = "moorage.yaml"
	}
	var sp *spec.Spec
	var data []byte
	readSpec := func() error {
		var err error
		data, err = os.ReadFile(filepath.Join(req.Dir, req.SpecName))
		if err != nil {
			return fmt.Errorf("%s: the commit has no %s: add one (moorage init) and push again", req.Commit, req.SpecName)
		}
		if sp, err = spec.ParseFor(req.SpecName, data, req.Runtime); err != nil {
			return err
		}
		if req.App != "" && sp.App != req.App {
			return fmt.Errorf("%s: its %s deploys app %q, but this pipeline is for %s: set `app: %s` in the spec, or send this repository's webhook to /hooks/%s", req.Commit, req.SpecName, sp.App, req.App, req.App, sp.App)
		}
		return nil
	}
	// A pipeline for a known app (a webhook's) is recorded before its spec
	// is read: nobody watches it, so a commit with a broken spec must fail
	// in `moorage deploys` and the notifications, not only in a log. One a
	// client streams tells the client.
	app := req.App
	if app == "" {
		if err := readSpec(); err != nil {
			return store.DeployFailed, err
		}
		app = sp.App
	}
	lock := r.appLock(app)
	if !lock.TryLock() {
		say(engine.Event{Type: engine.EventInfo, Text: "another pipeline of " + app + " is running; waiting for it"})
		lock.Lock()
	}
	defer lock.Unlock()

	rt := req.Runtime
	if sp != nil {
		rt = sp.Runtime
	}
	rec, err := r.record(ctx, app, rt, req)
	if err != nil {
		return store.DeployFailed, err
	}
	st := r.Engine.Store()
	say(engine.Event{Type: engine.EventPlan, Deploy: rec.ID, Text: rec.Plan})
	wctx := context.WithoutCancel(ctx)

	// stage journals one stage and streams its output.
	type stage struct {
		seq  int
		name string
		t0   time.Time
		out  strings.Builder
	}
	var open *stage // the stage begun and not ended, if any
	begin := func(name, detail string) *stage {
		seq, err := st.StartStep(wctx, rec.ID, name, detail)
		if err != nil {
			seq = -1
		}
		say(engine.Event{Type: engine.EventStep, Deploy: rec.ID, Seq: seq, Step: name, Detail: strings.TrimSpace(name + ": " + detail)})
		open = &stage{seq: seq, name: name, t0: time.Now()}
		return open
	}
	line := func(s *stage, text string) {
		s.out.WriteString(text + "\n")
		say(engine.Event{Type: engine.EventOutput, Deploy: rec.ID, Seq: s.seq, Step: s.name, Text: text})
	}
	end := func(s *stage, outcome string) {
		if s.seq > 0 {
			st.FinishStep(wctx, rec.ID, s.seq, outcome, s.out.String())
		}
		say(engine.Event{Type: engine.EventStepDone, Deploy: rec.ID, Seq: s.seq, Step: s.name, Outcome: outcome, Duration: time.Since(s.t0)})
		if open == s {
			open = nil
		}
	}
	// fail ends the record, and the stage that was running with it: no
	// step is left "running" in a finished record.
	fail := func(reason string) (string, error) {
		if open != nil {
			end(open, store.StepFailed)
		}
		st.FinishDeploy(wctx, rec.ID, store.DeployFailed, reason)
		return store.DeployFailed, fmt.Errorf("%w: %s", ErrFailed, reason)
	}

	// fetch: the caller fetched the tree; record what it is, and read its
	// spec if that was not done yet.
	s := begin("fetch", req.Commit.String())
	line(s, "commit "+req.Commit.String())
	if sp == nil {
		if err := readSpec(); err != nil {
			line(s, err.Error())
			return fail(err.Error())
		}
	}
	end(s, store.StepOK)

	// copies of the tree: the test build, the check build and the deploy
	// each consume one.
	copyTree := func() (string, error) {
		if err := os.MkdirAll(r.WorkDir, 0o700); err != nil {
			return "", err
		}
		d, err := os.MkdirTemp(r.WorkDir, "pipeline-")
		if err != nil {
			return "", err
		}
		// The runtimes move or remove the tree they build; the temporary
		// directory around it goes with it.
		tree := filepath.Join(d, "tree")
		if err := fsutil.CopyTree(req.Dir, tree); err != nil {
			os.RemoveAll(d)
			return "", err
		}
		return tree, nil
	}

	// build + test.
	var tests []spec.Task
	testEnv := map[string]string{}
	if sp.Test != nil {
		tests = sp.Test.Commands
		env, err := r.testEnv(wctx, sp)
		if err != nil {
			return fail("test: " + err.Error())
		}
		testEnv = env
	}
	bs := begin("build", "a throwaway build to test")
	var ts *stage
	if len(tests) == 0 {
		end(bs, store.StepSkipped)
		ts = begin("test", "the spec has no test:")
		end(ts, store.StepSkipped)
	} else {
		dir, err := copyTree()
		if err != nil {
			return fail("build: " + err.Error())
		}
		cur := bs
		res, err := r.Engine.RunInBuild(ctx, engine.InBuildRequest{
			Spec: sp, ContextDir: dir, Tasks: tests, Env: testEnv,
			Output: func(l string) { line(cur, l) },
			Built: func(err error) {
				if err != nil {
					end(bs, store.StepFailed)
					return
				}
				end(bs, store.StepOK)
				ts = begin("test", plural(len(tests), "command"))
				cur = ts
			},
		})
		os.RemoveAll(filepath.Dir(dir))
		if err != nil {
			return fail("test: " + err.Error()) // ends the build or test stage that was running
		}
		if res.BuildErr != nil {
			return fail("build failed: " + res.BuildErr.Error())
		}
		for _, run := range res.Runs {
			if !run.OK() {
				why := fmt.Sprintf("exited with status %d", run.Code)
				if run.Err != nil {
					why = run.Err.Error()
				}
				return fail(fmt.Sprintf("test failed: `%s` %s; the active release is unchanged", strings.Join(run.Command, " "), why))
			}
			line(ts, fmt.Sprintf("ok: `%s` (%.1fs)", strings.Join(run.Command, " "), run.Duration.Seconds()))
		}
		end(ts, store.StepOK)
	}

	// check: moorage check's preflight.
	cs := begin("check", "moorage check")
	dir, err := copyTree()
	if err != nil {
		return fail("check: " + err.Error())
	}
	rep, err := preflight.Run(ctx, r.Engine, req.SpecName, data, dir, req.Runtime, req.Plan)
	os.RemoveAll(filepath.Dir(dir))
	if err != nil {
		return fail("check: " + err.Error())
	}
	var failed []string
	for _, x := range rep.Results {
		text := fmt.Sprintf("%s %s: %s", strings.ToUpper(x.Status), x.Name, x.Message)
		if x.Fix != "" && x.Status != preflight.Pass {
			text += " (fix: " + x.Fix + ")"
		}
		line(cs, text)
		if x.Status == preflight.Fail {
			if x.Output != "" {
				for _, l := range strings.Split(strings.TrimRight(x.Output, "\n"), "\n") {
					line(cs, "  | "+l)
				}
			}
			failed = append(failed, x.Name)
		}
	}
	if len(failed) > 0 {
		return fail("check failed: " + strings.Join(failed, ", ") + "; the active release is unchanged")
	}
	end(cs, store.StepOK)

	// deploy: an ordinary deploy, under the app's lock (waiting for it).
	ds := begin("deploy", "build, release tasks, checks, cutover, monitor")
	dir, err = copyTree()
	if err != nil {
		return fail("deploy: " + err.Error())
	}
	op := r.Engine.Deploy(engine.DeployRequest{Spec: sp, SpecYAML: string(data), ContextDir: dir, Runtime: req.Runtime,
		Owner: fmt.Sprintf("%s (pipeline #%d, %s)", req.Owner, rec.ID, req.Commit), Parent: rec.ID, Wait: true, Commit: commitOf(req.Commit)})
	for i := 0; ; i++ {
		ev, ok := op.Next(wctx, i)
		if !ok {
			break
		}
		switch ev.Type {
		case engine.EventDone:
		case engine.EventOutput, engine.EventInfo, engine.EventWarn, engine.EventError:
			line(ds, "  "+ev.Text)
		case engine.EventStep:
			line(ds, "- "+ev.Step+" "+ev.Detail)
		case engine.EventStepDone:
			line(ds, fmt.Sprintf("  %s %s (%.1fs)", ev.Step, ev.Outcome, ev.Duration.Seconds()))
		}
	}
	status, derr := op.Wait(wctx)
	os.RemoveAll(filepath.Dir(dir))
	line(ds, fmt.Sprintf("deploy #%d %s", op.DeployID(), status))
	if status != store.DeploySucceeded {
		reason := fmt.Sprintf("deploy #%d %s", op.DeployID(), status)
		if derr != nil {
			reason += ": " + derr.Error()
		}
		return fail(reason)
	}
	end(ds, store.StepOK)

	// notify: the server's notifier tells of the deploy's outcome from its
	// record; say who it goes to.
	ns := begin("notify", "")
	if list, err := st.ListNotifiers(wctx, app); err == nil {
		if len(list) == 0 {
			line(ns, "no notifier is set for "+app+" (moorage notify add)")
		}
		for _, n := range list {
			line(ns, "notifying "+n.Label)
		}
	}
	end(ns, store.StepOK)
	if err := st.FinishDeploy(wctx, rec.ID, store.DeploySucceeded, ""); err != nil {
		return store.DeployFailed, err
	}
	return store.DeploySucceeded, nil
}

// record creates the pipeline's record.
func (r *Runner) record(ctx context.Context, app, runtime string, req Request) (*store.Deploy, error) {
	st := r.Engine.Store()
	a, err := st.EnsureApp(ctx, app, runtime)
	if err != nil {
		return nil, err
	}
	rec := &store.Deploy{App: app, Kind: Kind, FromRelease: a.Current, Owner: req.Owner, Plan: "pipeline of " + req.Commit.String() + ": " + strings.Join(stages, ", ")}
	if err := st.CreateDeploy(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// stages are a pipeline's stages, in order.
var stages = []string{"fetch", "build", "test", "check", "deploy", "notify"}

// Failed records a pipeline of req.App that failed before its tree could
// be run (the webhook's fetch of the commit): like any pipeline, it is in
// `moorage deploys` and the notifications. output is the failed stage's.
func (r *Runner) Failed(ctx context.Context, req Request, stage, output, reason string) error {
	lock := r.appLock(req.App)
	lock.Lock()
	defer lock.Unlock()
	rec, err := r.record(ctx, req.App, req.Runtime, req)
	if err != nil {
		return err
	}
	st := r.Engine.Store()
	if seq, err := st.StartStep(ctx, rec.ID, stage, req.Commit.String()); err == nil {
		st.FinishStep(ctx, rec.ID, seq, store.StepFailed, output)
	}
	return st.FinishDeploy(ctx, rec.ID, store.DeployFailed, reason)
}

// commitOf is c for the release, nil when there is none.
func commitOf(c Commit) *store.Commit {
	if c.SHA == "" {
		return nil
	}
	return &c
}

// CloseInterrupted closes the records of pipelines a crash or restart of
// the server interrupted; it runs once the engine's recovery has closed
// the deploys. A pipeline that had reached its deploy stage ends as that
// deploy ended, and says so (that deploy's own record is the one notified);
// one interrupted earlier deployed nothing and failed: push again, or
// redeliver the webhook.
func CloseInterrupted(ctx context.Context, st *store.Store) error {
	running, err := st.RunningDeploys(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range running {
		if p.Kind != Kind {
			continue
		}
		status, reason := store.DeployFailed, fmt.Sprintf("interrupted by a server restart during its %s stage: nothing was deployed; push again (or redeliver the webhook)", p.Phase)
		if p.Phase == "deploy" || p.Phase == "notify" {
			d, err := st.ChildDeploy(ctx, p.ID)
			switch {
			case err != nil:
				errs = append(errs, err)
				continue
			case d == nil:
				// The deploy stage began, and the crash came before its
				// deploy was recorded: nothing was deployed.
			case d.Status == store.DeployRunning:
				reason = fmt.Sprintf("deploy #%d: interrupted by a server restart; its own record tells how it ends", d.ID)
			default:
				status, reason = d.Status, fmt.Sprintf("deploy #%d %s (the pipeline was interrupted by a server restart during its %s stage)", d.ID, d.Status, p.Phase)
				if d.Status != store.DeploySucceeded {
					status = store.DeployFailed
				}
			}
		}
		if err := st.FinishDeploy(ctx, p.ID, status, reason); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// testEnv is the test stage's environment: the spec's env, test.env over
// it, and only the secrets test.secrets lists; no config values.
func (r *Runner) testEnv(ctx context.Context, sp *spec.Spec) (map[string]string, error) {
	env := runtime.Merge(sp.Env, sp.Test.Env)
	if len(sp.Test.Secrets) == 0 {
		return env, nil
	}
	vals, err := r.Engine.OpenSecrets(ctx, sp.App, sp.Test.Secrets)
	if err != nil {
		return nil, err
	}
	// Secret values are literal: a $ in one is never expanded.
	return runtime.Merge(env, runtime.EscapeEnv(vals)), nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
