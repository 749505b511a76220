package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// The process runtime's instance supervisors are this test binary.
func TestMain(m *testing.M) {
	process.MaybeRunShim()
	os.Exit(m.Run())
}

// processEngine is an engine with the real process runtime and proxy, on a
// fresh data dir; its instances are stopped when the test ends.
func processEngine(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, filepath.Join(dir, "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := process.New(process.Options{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	px := proxy.New(proxy.Options{Logger: log})
	e := New(Options{Store: st, Runtimes: map[string]runtime.Runtime{"process": rt}, Proxy: px,
		ServerID: "test", Logger: log, DataDir: dir})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.StopAll(sctx); err != nil {
			t.Errorf("stop instances: %v", err)
		}
		e.Close()
		px.Close()
		st.Close()
	})
	return e
}

const dryRunSpec = `app: dry
runtime: process
services:
  worker:
    command: sleep 300
    replicas: 2
    min_ready: 50ms
  scheduler:
    command: sleep 300
    singleton: true
    min_ready: 50ms
deploy:
  monitor: 0s
`

// deployReq is a deploy of dryRunSpec with message in its context.
func deployReq(t *testing.T, message string, dry bool) DeployRequest {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "moorage.yaml"), []byte(dryRunSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "message.txt"), []byte(message), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse("moorage.yaml", []byte(dryRunSpec))
	if err != nil {
		t.Fatal(err)
	}
	return DeployRequest{Spec: sp, SpecYAML: dryRunSpec, ContextDir: dir, Owner: "test", DryRun: dry}
}

// finish waits for op and returns its status and its plan event (the
// first one: an undo's plan comes after).
func finish(t *testing.T, op *Op) (string, Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	status, err := op.Wait(ctx)
	var plan Event
	for i := 0; ; i++ {
		ev, ok := op.Next(ctx, i)
		if !ok {
			break
		}
		if ev.Type == EventPlan && plan.Text == "" {
			plan = ev
		}
	}
	if err != nil && status != StatusPlanned {
		t.Fatalf("operation %s: %v", status, err)
	}
	return status, plan
}

// dryThenReal runs a dry run, checks that it changed nothing, then the
// real operation, and checks that the plan the real one journaled is the
// dry run's text.
func dryThenReal(t *testing.T, e *Engine, what string, dry, real func() *Op) string {
	t.Helper()
	ctx := context.Background()
	before, err := e.st.ListDeploys(ctx, "dry", 100)
	if err != nil {
		t.Fatal(err)
	}
	rels, _ := e.st.ListReleases(ctx, "dry")
	app, _ := e.st.GetApp(ctx, "dry")
	cfg, _ := e.st.GetConfig(ctx, "dry")
	obs, _ := e.observe(ctx, "dry")

	status, plan := finish(t, dry())
	if status != StatusPlanned {
		t.Fatalf("dry run of %s ended %s, want %s", what, status, StatusPlanned)
	}
	if plan.Text == "" || len(plan.Steps) == 0 {
		t.Fatalf("dry run of %s printed no plan: %+v", what, plan)
	}
	for i, s := range plan.Steps {
		if !strings.Contains(plan.Text, s.Text) || s.Kind == "" {
			t.Errorf("dry run of %s: step %d %+v is not in the plan's text", what, i+1, s)
		}
	}
	after, _ := e.st.ListDeploys(ctx, "dry", 100)
	rels2, _ := e.st.ListReleases(ctx, "dry")
	app2, _ := e.st.GetApp(ctx, "dry")
	cfg2, _ := e.st.GetConfig(ctx, "dry")
	obs2, _ := e.observe(ctx, "dry")
	if len(after) != len(before) || len(rels2) != len(rels) || len(cfg2) != len(cfg) || len(obs2) != len(obs) {
		t.Fatalf("dry run of %s changed something: deploys %d→%d, releases %d→%d, config %d→%d, instances %d→%d",
			what, len(before), len(after), len(rels), len(rels2), len(cfg), len(cfg2), len(obs), len(obs2))
	}
	if app != nil && (app2.Current != app.Current || !sameFormation(app.Formation, app2.Formation)) {
		t.Fatalf("dry run of %s changed the app: %+v → %+v", what, app, app2)
	}
	if l, err := e.st.GetLock(ctx, "dry"); err == nil {
		t.Fatalf("dry run of %s left a lock: %+v", what, l)
	}

	op := real()
	status, _ = finish(t, op)
	if status != store.DeploySucceeded {
		t.Fatalf("%s: %s", what, status)
	}
	d, err := e.st.GetDeploy(ctx, op.DeployID())
	if err != nil {
		t.Fatal(err)
	}
	if d.Plan != plan.Text {
		t.Fatalf("%s: the dry run printed\n%s\nbut the %s journaled\n%s", what, plan.Text, what, d.Plan)
	}
	return plan.Text
}

func sameFormation(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A dry run of a deploy, scale, config change or rollback prints the plan
// the real operation then journals, word for word, and changes nothing:
// no lock, no deploy record, no release, no config, no instance.
func TestDryRunPrintsThePlanTheJournalRecords(t *testing.T) {
	e := processEngine(t)
	first := dryThenReal(t, e, "first deploy",
		func() *Op { return e.Deploy(deployReq(t, "one", true)) },
		func() *Op { return e.Deploy(deployReq(t, "one", false)) })
	if !strings.HasPrefix(first, "deploy dry v1 (active: none)\n") {
		t.Errorf("first deploy's plan:\n%s", first)
	}
	second := dryThenReal(t, e, "deploy",
		func() *Op { return e.Deploy(deployReq(t, "two", true)) },
		func() *Op { return e.Deploy(deployReq(t, "two", false)) })
	if !strings.Contains(second, "stop dry-worker-v1-1 dry-worker-v1-2") {
		t.Errorf("second deploy's plan does not stop v1's workers:\n%s", second)
	}
	scale := dryThenReal(t, e, "scale",
		func() *Op {
			return e.Scale(ScaleRequest{App: "dry", Replicas: map[string]int{"worker": 1}, Owner: "test", DryRun: true})
		},
		func() *Op {
			return e.Scale(ScaleRequest{App: "dry", Replicas: map[string]int{"worker": 1}, Owner: "test"})
		})
	if !strings.Contains(scale, "dry-worker-v2-2") {
		t.Errorf("scale's plan does not remove the second worker:\n%s", scale)
	}
	dryThenReal(t, e, "config change",
		func() *Op {
			return e.ChangeConfig(ConfigRequest{App: "dry", Set: map[string]string{"GREETING": "hi"}, Deploy: true, Owner: "test", DryRun: true})
		},
		func() *Op {
			return e.ChangeConfig(ConfigRequest{App: "dry", Set: map[string]string{"GREETING": "hi"}, Deploy: true, Owner: "test"})
		})
	rb := dryThenReal(t, e, "rollback",
		func() *Op { return e.Rollback(RollbackRequest{App: "dry", Owner: "test", DryRun: true}) },
		func() *Op { return e.Rollback(RollbackRequest{App: "dry", Owner: "test"}) })
	if !strings.HasPrefix(rb, "rollback dry v4 (active: v3)\n") {
		t.Errorf("rollback's plan:\n%s", rb)
	}

	// A staged config change only says what it would stage. (The rollback
	// brought back v2's config: none.)
	status, plan := finish(t, e.ChangeConfig(ConfigRequest{App: "dry", Set: map[string]string{"LATER": "1"}, Owner: "test", DryRun: true}))
	if status != StatusPlanned || plan.Text != "" {
		t.Fatalf("dry run of a staged change: %s %q", status, plan.Text)
	}
	if cfg, _ := e.st.GetConfig(context.Background(), "dry"); len(cfg) != 0 {
		t.Fatalf("dry run staged its change: %+v", cfg)
	}
	// A dry run is refused like the real operation.
	op := e.Scale(ScaleRequest{App: "dry", Replicas: map[string]int{"nope": 1}, Owner: "test", DryRun: true})
	if status, err := op.Wait(context.Background()); status != store.DeployFailed || err == nil || !strings.Contains(err.Error(), `no service "nope"`) {
		t.Fatalf("dry run of a bad scale: %s %v", status, err)
	}
}

// Stop and start go through operate like every operation: their dry runs
// print the plan they journal and change nothing. Destroy's dry run (or a
// destroy without Yes) prints the plan the destroy then follows and
// changes nothing; the destroy forgets the app, stops its instances and
// removes its artifacts, and a second destroy finds no app.
func TestDryRunStopStartDestroy(t *testing.T) {
	e := processEngine(t)
	ctx := context.Background()
	if status, _ := finish(t, e.Deploy(deployReq(t, "one", false))); status != store.DeploySucceeded {
		t.Fatalf("deploy: %s", status)
	}
	stop := dryThenReal(t, e, "stop",
		func() *Op { return e.StopApp(StopStartRequest{App: "dry", Owner: "test", DryRun: true}) },
		func() *Op { return e.StopApp(StopStartRequest{App: "dry", Owner: "test"}) })
	if !strings.HasPrefix(stop, "stop dry v1 (active: v1)\n  1. maintenance on") {
		t.Errorf("stop's plan:\n%s", stop)
	}
	if stopped, _ := e.Stopped(ctx, "dry"); !stopped {
		t.Fatal("not stopped after stop")
	}
	start := dryThenReal(t, e, "start",
		func() *Op { return e.StartApp(StopStartRequest{App: "dry", Owner: "test", DryRun: true}) },
		func() *Op { return e.StartApp(StopStartRequest{App: "dry", Owner: "test"}) })
	if !strings.Contains(start, "maintenance off") {
		t.Errorf("start's plan:\n%s", start)
	}
	rels, _ := e.st.ListReleases(ctx, "dry")
	art := rels[0].Artifact.Ref

	for _, req := range []DestroyRequest{{App: "dry", Owner: "test", DryRun: true, Yes: true}, {App: "dry", Owner: "test"}} {
		op := e.Destroy(req)
		status, err := op.Wait(ctx)
		if req.DryRun && status != StatusPlanned || !req.DryRun && (status != store.DeployFailed || err == nil || !strings.Contains(err.Error(), "--yes")) {
			t.Errorf("destroy %+v: %s %v", req, status, err)
		}
		var plan Event
		for i := 0; ; i++ {
			ev, ok := op.Next(ctx, i)
			if !ok {
				break
			}
			if ev.Type == EventPlan {
				plan = ev
			}
		}
		if !strings.HasPrefix(plan.Text, "destroy dry nothing (active: v1)\n  1. unroute") {
			t.Errorf("destroy's plan:\n%s", plan.Text)
		}
		if obs, _ := e.observe(ctx, "dry"); len(obs) != 3 {
			t.Fatalf("a destroy that only plans changed what runs: %d instances", len(obs))
		}
		if _, err := e.st.GetApp(ctx, "dry"); err != nil {
			t.Fatalf("a destroy that only plans forgot the app: %v", err)
		}
	}
	status, _ := finish(t, e.Destroy(DestroyRequest{App: "dry", Owner: "test", Yes: true}))
	if status != store.DeploySucceeded {
		t.Fatalf("destroy: %s", status)
	}
	if obs, _ := e.observe(ctx, "dry"); len(obs) != 0 {
		t.Errorf("instances after destroy: %+v", obs)
	}
	if _, err := e.st.GetApp(ctx, "dry"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("app after destroy: %v", err)
	}
	if _, err := os.Stat(art); !os.IsNotExist(err) {
		t.Errorf("artifact %s after destroy: %v", art, err)
	}
	op := e.Destroy(DestroyRequest{App: "dry", Owner: "test", Yes: true})
	if _, err := op.Wait(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("second destroy: %v", err)
	}
}
