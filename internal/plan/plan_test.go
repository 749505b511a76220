package plan

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

const helloSpec = `
app: hello
runtime: process
build:
  command: go build -o hello .
release:
  - ./hello migrate
checks:
  - ./hello check
services:
  web:
    command: ./hello web
    replicas: 2
    health: {path: /healthz, interval: 1s}
  worker:
    command: ./hello worker
  scheduler:
    command: ./hello scheduler
    singleton: true
accessories:
  db:
    command: postgres -D $MOORAGE_VOLUME_PGDATA -p $PORT
    port: 5432
    volumes: ["pgdata:/var/lib/postgresql/data"]
volumes:
  data: {mount: /app/data}
deploy:
  monitor: 5s
`

func mustSpec(t *testing.T, text string) *spec.Spec {
	t.Helper()
	sp, err := spec.Parse("moorage.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func target(t *testing.T, rel string, sp *spec.Spec) Target {
	t.Helper()
	f := map[string]int{}
	for n, s := range sp.Services {
		f[n] = s.Replicas
	}
	tg := Target{Release: rel, Spec: sp, Formation: f, AccessoryHash: map[string]string{}}
	for n, a := range sp.Accessories {
		tg.AccessoryHash[n] = hashOf(a)
	}
	return tg
}

// hashOf stands for the engine's accessory hash: any function of the
// accessory's spec.
func hashOf(a *spec.Accessory) string {
	b, _ := json.Marshal(a)
	return fmt.Sprintf("%x", sha256.Sum256(b))[:16]
}

func inst(svc, rel string, idx int, state runtime.State) runtime.Instance {
	return runtime.Instance{
		ID: runtime.InstanceID("hello", svc, rel, idx, runtime.KindService), App: "hello", Service: svc,
		Release: rel, Index: idx, Kind: runtime.KindService, State: state,
	}
}

func running(svc, rel string, idx int) runtime.Instance {
	return inst(svc, rel, idx, runtime.StateRunning)
}

func accessory(name, hash string) runtime.Instance {
	return runtime.Instance{ID: "hello-" + name, App: "hello", Service: name, Kind: runtime.KindAccessory, State: runtime.StateRunning, Hash: hash}
}

var update = flag.Bool("update", false, "rewrite testdata/plans/*.golden with the plans made now")

// golden compares a printed plan with testdata/plans/NAME.golden (go test
// -run TestPlan -update rewrites them; review the diff).
func golden(t *testing.T, got *Plan, name string) {
	t.Helper()
	path := filepath.Join("testdata", "plans", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got.String() != string(want) {
		t.Errorf("plan:\n%s\nwant (%s):\n%s", got, path, want)
	}
}

func TestPlanFirstDeploy(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: target(t, "v1", sp), Build: true, RunTasks: true})
	golden(t, p, "plan_first_deploy")
}

func TestPlanDeployOverRunningRelease(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v4", sp)
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), running("scheduler", "v3", 1),
		accessory("db", tg.AccessoryHash["db"]),
	}
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v3", Build: true, RunTasks: true, Observed: observed})
	golden(t, p, "plan_deploy_over_running_release")
}

func TestPlanAccessoryChangedIsRestartedByDeployOnly(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v2", sp)
	observed := []runtime.Instance{accessory("db", "old-hash"), running("web", "v1", 1), running("web", "v1", 2)}
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v1", Observed: observed})
	if !strings.Contains(p.String(), "accessory db: restart (its spec changed)") {
		t.Errorf("deploy should restart a changed accessory:\n%s", p)
	}
	c := Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, Observed: observed})
	if !strings.Contains(c.String(), "accessory db: keep") {
		t.Errorf("recovery must never restart a running accessory:\n%s", c)
	}
}

func TestPlanRollbackSkipsTasksAndBuild(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	p := Deploy(DeployInput{App: "hello", Kind: "rollback", Target: target(t, "v5", sp), From: "v4",
		Observed: []runtime.Instance{running("web", "v4", 1), running("web", "v4", 2), running("worker", "v4", 1), running("scheduler", "v4", 1)}})
	s := p.String()
	for _, bad := range []string{"build", "release task"} {
		if strings.Contains(s, bad) {
			t.Errorf("rollback plan has %q:\n%s", bad, s)
		}
	}
	if !strings.Contains(s, "check task 1") {
		t.Errorf("rollback must still run checks:\n%s", s)
	}
}

// The monitor saw v4 fail: v3's web instances are still warm, so the revert
// routes to them at once and starts v3's worker after the cutover.
func TestPlanRevertAfterCutover(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v3", sp)
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2),
		running("web", "v4", 1), running("web", "v4", 2), running("worker", "v4", 1), running("scheduler", "v4", 1),
		accessory("db", tg.AccessoryHash["db"]),
	}
	p := Converge(ConvergeInput{App: "hello", Kind: "revert", Target: &tg, From: "v4", Observed: observed})
	golden(t, p, "plan_revert_after_cutover")
}

// After a crash mid-deploy (before cutover) the server restarts with v3
// active: v4's instances and the orphaned release task go; v3 is routed
// first, and its dead worker restarted.
func TestPlanRecoverBeforeCutover(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v3", sp)
	task := runtime.Instance{ID: "hello-release-1-v4-0", App: "hello", Service: "release-1", Release: "v4", Kind: runtime.KindTask, State: runtime.StateRunning}
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), inst("worker", "v3", 1, runtime.StateExited), running("scheduler", "v3", 1),
		running("web", "v4", 1), task, accessory("db", tg.AccessoryHash["db"]),
	}
	p := Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v3", Observed: observed, Unrouted: true})
	golden(t, p, "plan_recover_before_cutover")
}

func TestPlanRecoverNothingActive(t *testing.T) {
	observed := []runtime.Instance{running("web", "v1", 1), accessory("db", "x")}
	p := Converge(ConvergeInput{App: "hello", Kind: "undo", Observed: observed})
	golden(t, p, "plan_recover_nothing_active")
}

// Two singletons must never run at once: the plan always stops the old one
// before it starts the new one, and never starts one beside another.
// A routed singleton (web) likewise.
func TestPlanSingletonNeverTwo(t *testing.T) {
	for name, text := range map[string]string{"scheduler": helloSpec, "web": singletonWebSpec} {
		testPlanSingletonNeverTwo(t, name, mustSpec(t, text))
	}
}

func testPlanSingletonNeverTwo(t *testing.T, name string, sp *spec.Spec) {
	tg := target(t, "v2", sp)
	for _, observed := range [][]runtime.Instance{
		nil,
		{running(name, "v1", 1)},
		{running(name, "v2", 1)},
		{running(name, "v1", 1), running(name, "v2", 1)},
		{inst(name, "v2", 1, runtime.StateExited)},
	} {
		p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, Observed: observed})
		alive := map[string]bool{}
		for _, o := range observed {
			if o.Service == name && o.State != runtime.StateExited {
				alive[o.ID] = true
			}
		}
		for _, s := range p.Steps {
			switch s := s.(type) {
			case Stop:
				for _, id := range s.IDs {
					delete(alive, id)
				}
			case Drain:
				for _, id := range s.IDs {
					delete(alive, id)
				}
			case Singleton:
				for _, id := range s.Old {
					delete(alive, id)
				}
				if s.SkipStart {
					continue
				}
				if len(alive) > 0 {
					t.Fatalf("singleton started while %v alive:\n%s", alive, p)
				}
				alive[runtime.InstanceID("hello", s.Service, s.Release, s.Index, runtime.KindService)] = true
			case Start:
				for _, st := range s.Starts {
					if st.Service == name {
						t.Fatalf("singleton started by a start step:\n%s", p)
					}
				}
			}
		}
		if len(alive) > 1 {
			t.Fatalf("%d schedulers alive after plan:\n%s", len(alive), p)
		}
	}
}

func TestPlanScaleDownWithinTarget(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v2", sp)
	tg.Formation["web"] = 1
	observed := []runtime.Instance{running("web", "v2", 1), running("web", "v2", 2), running("worker", "v2", 1), running("scheduler", "v2", 1)}
	p := Converge(ConvergeInput{App: "hello", Kind: "converge", Target: &tg, From: "v2", Observed: observed})
	golden(t, p, "plan_scale_down_within_target")
}

// A service without a health check of its own is gated on the image's
// HEALTHCHECK when the artifact has one.
func TestPlanImageHealthcheckGate(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v2", sp)
	tg.ImageHealthcheck = true
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg})
	s := p.String()
	if !strings.Contains(s, "worker v2 ×1 [1], ready when the image's HEALTHCHECK passes") {
		t.Errorf("worker not gated on the image's health check:\n%s", s)
	}
	if !strings.Contains(s, "web v2 ×2 [1 2], ready on http /healthz") {
		t.Errorf("web must keep its own check:\n%s", s)
	}

	// A web service without a health check of its own gets a TCP check
	// by default; the image's HEALTHCHECK replaces it, waiting as long as
	// the image's settings may take.
	sp = mustSpec(t, strings.Replace(helloSpec, "    health: {path: /healthz, interval: 1s}\n", "", 1))
	tg = target(t, "v2", sp)
	if s := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg}).String(); !strings.Contains(s, "web v2 ×2 [1 2], ready on tcp connect") {
		t.Errorf("web without a health check nor an image HEALTHCHECK:\n%s", s)
	}
	tg.ImageHealthcheck, tg.ImageHealthWait = true, 2*time.Minute+30*time.Second
	s = Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg}).String()
	if !strings.Contains(s, "web v2 ×2 [1 2], ready when the image's HEALTHCHECK passes (within 2m30s)") {
		t.Errorf("web without a health check of its own not gated on the image's:\n%s", s)
	}

	// A docker deploy that builds its image knows whether it has a
	// HEALTHCHECK only after the build: the plan says both, and the start
	// step resolves the gate with the artifact.
	dockerSpec := strings.Replace(helloSpec, "runtime: process", "runtime: docker", 1)
	dockerSpec = strings.Replace(dockerSpec, "    health: {path: /healthz, interval: 1s}\n", "", 1)
	dockerSpec = strings.Replace(dockerSpec, "  db:\n", "  db:\n    image: postgres:16\n", 1)
	sp = mustSpec(t, dockerSpec)
	tg = target(t, "v2", sp)
	s = Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, Build: true}).String()
	for _, want := range []string{
		"web v2 ×2 [1 2], ready when the image's HEALTHCHECK passes if it has one, else ready on tcp connect",
		"worker v2 ×1 [1], ready when the image's HEALTHCHECK passes if it has one, else ready after 5s up",
		"start v2 [1], ready when the image's HEALTHCHECK passes if it has one, else watched by the monitor",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("plan lacks %q:\n%s", want, s)
		}
	}
	g := Gate{Kind: "image", Interval: time.Second, Else: &Gate{Kind: "tcp", Interval: time.Second, Within: 30 * time.Second}}
	if got := g.Resolve(true, 22*time.Second); got.Kind != "image" || got.Within != 22*time.Second || got.Else != nil {
		t.Errorf("resolved with a HEALTHCHECK: %+v", got)
	}
	if got := g.Resolve(false, 0); got.Kind != "tcp" || got.Within != 30*time.Second {
		t.Errorf("resolved without a HEALTHCHECK: %+v", got)
	}
}

const singletonWebSpec = `
app: hello
runtime: process
services:
  web:
    command: ./hello web
    singleton: true
    health: {path: /healthz, interval: 1s}
    http: {drain_timeout: 5s}
  api:
    command: ./hello web
    replicas: 2
    http: {hosts: [api.example.com]}
  worker:
    command: ./hello worker
deploy:
  monitor: 5s
  drain_timeout: 1m
`

// A routed singleton (a stop-first web) cannot start before the cutover:
// the cutover routes its service to nothing (requests wait), and its
// singleton step, right after, drains and stops the old instance, starts
// the new one health-gated and routes it with everything the cutover
// routed.
func TestPlanSingletonWeb(t *testing.T) {
	sp := mustSpec(t, singletonWebSpec)
	tg := target(t, "v2", sp)
	observed := []runtime.Instance{running("web", "v1", 1), running("api", "v1", 1), running("api", "v1", 2), running("worker", "v1", 1)}
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v1", Observed: observed})
	golden(t, p, "plan_singleton_web")

	// The first deploy: nothing to stop, and the web still waits for its
	// own step to be routed.
	p = Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg})
	golden(t, p, "plan_singleton_web-2")
}

// The monitor saw v2 fail: v1's web singleton is gone, so the revert holds
// web's requests while v2's drains and stops and v1's starts again.
func TestPlanSingletonWebRevert(t *testing.T) {
	sp := mustSpec(t, singletonWebSpec)
	tg := target(t, "v1", sp)
	observed := []runtime.Instance{
		running("api", "v1", 1), running("api", "v1", 2),
		running("web", "v2", 1), running("api", "v2", 1), running("api", "v2", 2), running("worker", "v2", 1),
	}
	p := Converge(ConvergeInput{App: "hello", Kind: "revert", Target: &tg, From: "v2", Observed: observed})
	golden(t, p, "plan_singleton_web_revert")
}

// A crash after the cutover committed v2: before the singleton step, v1's
// web still runs and v2's must start; after it, v2's runs and is routed at
// once.
func TestPlanSingletonWebRecover(t *testing.T) {
	sp := mustSpec(t, singletonWebSpec)
	tg := target(t, "v2", sp)
	base := []runtime.Instance{running("api", "v2", 1), running("api", "v2", 2), running("worker", "v2", 1)}
	p := Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v2", Unrouted: true,
		Observed: append([]runtime.Instance{running("web", "v1", 1)}, base...)})
	golden(t, p, "plan_singleton_web_recover")
	p = Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v2", Unrouted: true,
		Observed: append([]runtime.Instance{running("web", "v2", 1)}, base...)})
	golden(t, p, "plan_singleton_web_recover-2")
}

// The drain timeout is the release being converged to's: the service's
// http.drain_timeout, else deploy.drain_timeout; a service it no longer
// has keeps its own release's.
func TestPlanDrainTimeout(t *testing.T) {
	v1 := mustSpec(t, strings.Replace(singletonWebSpec, "  worker:\n", `  old:
    command: ./hello web
    http: {hosts: [old.example.com], drain_timeout: 3m}
  worker:
`, 1))
	v2 := mustSpec(t, strings.Replace(singletonWebSpec, "drain_timeout: 1m", "drain_timeout: 20s", 1))
	v2.Deploy.KeepWarm = 0 // the old web stops at the end of the deploy (else it stays warm, undrained)
	tg := target(t, "v2", v2)
	for _, c := range []struct {
		observed []runtime.Instance
		want     string
	}{
		{[]runtime.Instance{running("api", "v1", 1)}, "drain (up to 20s) and stop hello-api-v1-1"},
		{[]runtime.Instance{running("api", "v1", 1), running("old", "v1", 1)}, "drain (up to 3m0s) and stop hello-api-v1-1 hello-old-v1-1"},
	} {
		p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v1", Observed: c.observed, Specs: map[string]*spec.Spec{"v1": v1}})
		if !strings.Contains(p.String(), c.want) {
			t.Errorf("plan lacks %q:\n%s", c.want, p)
		}
	}
	if d := drainTimeout(tg, nil, []runtime.Instance{running("web", "v1", 1)}); d != 5*time.Second {
		t.Errorf("web's http.drain_timeout: got %s, want 5s", d)
	}
}

// Scaled to 0, a routed singleton drains its own instance for as long as
// its service says, not the default.
func TestPlanSingletonWebScaledToZeroDrains(t *testing.T) {
	sp := mustSpec(t, singletonWebSpec)
	tg := target(t, "v2", sp)
	tg.Formation["web"] = 0
	p := Converge(ConvergeInput{App: "hello", Kind: "scale", Target: &tg, From: "v2",
		Observed: []runtime.Instance{running("web", "v2", 1), running("api", "v2", 1), running("api", "v2", 2), running("worker", "v2", 1)}})
	if !strings.Contains(p.String(), "drain (up to 5s) and stop hello-web-v2-1") {
		t.Errorf("plan:\n%s", p)
	}
}

// What the executor used to decide on its own is in the printed plan of
// every operation that moves the app to a release: the commit point (the
// cutover that records the target as active), the adoption of its config,
// and the prune of old artifacts. A scale keeps its release: it adopts
// nothing. Undo, revert and recovery plans have none of the three.
func TestPlanOperationsGolden(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	v3 := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), running("scheduler", "v3", 1),
		accessory("db", target(t, "v3", sp).AccessoryHash["db"]),
	}
	golden(t, Deploy(DeployInput{App: "hello", Kind: "rollback", Target: target(t, "v4", sp), From: "v3", Observed: v3, Proven: true}), "op_rollback")
	golden(t, Deploy(DeployInput{App: "hello", Kind: "config", Target: target(t, "v4", sp), From: "v3", Observed: v3}), "op_config")
	scaled := target(t, "v3", sp)
	scaled.Formation["web"], scaled.Formation["worker"] = 3, 0
	golden(t, Converge(ConvergeInput{App: "hello", Kind: "scale", Target: &scaled, From: "v3", Observed: v3, Finish: true}), "op_scale")
	undo := Converge(ConvergeInput{App: "hello", Kind: "undo", Target: &scaled, From: "v4", Observed: v3})
	for _, s := range undo.Steps {
		if c, ok := s.(Cutover); s.Kind() == KindAdopt || s.Kind() == KindPrune || ok && c.Commit {
			t.Errorf("an undo plan adopts, prunes or commits:\n%s", undo)
		}
	}
	kept := mustSpec(t, strings.Replace(helloSpec, "deploy:\n", "deploy:\n  keep_releases: 2\n", 1))
	golden(t, Deploy(DeployInput{App: "hello", Kind: "deploy", Target: target(t, "v4", kept), From: "v3", Build: true, RunTasks: true, Observed: v3}), "op_deploy_keep_2")
}

// The prune step names the releases whose artifacts it removes: the plan,
// not the executor, decides them.
func TestPlanDeployNamesWhatItPrunes(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	sp.Deploy.KeepReleases = 2
	tg := target(t, "v4", sp)
	var history []Release
	for v := 3; v >= 1; v-- {
		st := ReleaseRetired
		if v == 3 {
			st = ReleaseActive
		}
		history = append(history, Release{Version: v, Status: st, KeepReleases: sp.Deploy.KeepReleases,
			Artifact: runtime.Artifact{Runtime: "process", Ref: fmt.Sprintf("/data/releases/hello/v%d", v)}})
	}
	ret := &Retention{History: history, Target: &Release{Version: 4, Status: ReleasePending, KeepReleases: sp.Deploy.KeepReleases}, From: 3}
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v3", Build: true, RunTasks: true, Observed: v3Running(t), Retention: ret})
	golden(t, p, "plan_deploy_prunes")
	if !strings.Contains(p.String(), "prune the artifacts of releases beyond keep_releases (2): v1 v2") {
		t.Errorf("the plan does not name v1 and v2:\n%s", p)
	}
}

// A rollback's workers (a release that served before, whose gates it
// passed then) start right after the cutover, beside the old workers and
// with their whole gate, and the old workers stop only after them: the
// cutover waits for the web's health checks alone. With or without a
// monitor window alike. A deploy of new code starts every worker before
// its cutover.
func TestProvenReleaseStartsWorkersAfterCutover(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	// where says, per service, when its instances start ("before" or
	// "after" the cutover) and with which gate; order is the plan's
	// step kinds.
	where := func(in DeployInput) (map[string]string, []Kind) {
		got := map[string]string{}
		var order []Kind
		cut := false
		for _, s := range Deploy(in).Steps {
			order = append(order, s.Kind())
			switch s := s.(type) {
			case Cutover:
				cut = true
			case Start:
				for _, ss := range s.Starts {
					when := "before"
					if cut {
						when = "after"
					}
					got[ss.Service] = when + ": " + ss.Gate.String()
				}
			}
		}
		return got, order
	}
	afterCut := []Kind{KindPrepare, KindAccessory, KindCheck, KindStart, KindCutover, KindStart, KindStop, KindSingleton}
	in := DeployInput{App: "hello", Kind: "rollback", Target: target(t, "v4", sp), From: "v3", Observed: v3Running(t), Proven: true}
	g, order := where(in)
	if g["web"] != "before: ready on http /healthz" || g["worker"] != "after: ready after 5s up" {
		t.Errorf("proven: %q", g)
	}
	if !slices.Equal(order[:len(afterCut)], afterCut) {
		t.Errorf("proven: the worker does not start between the cutover and the old workers' stop: %v\n%s", order, Deploy(in))
	}

	unmonitored := *sp
	unmonitored.Deploy.Monitor = 0
	in.Target = target(t, "v4", &unmonitored)
	if g, order := where(in); g["worker"] != "after: ready after 5s up" || !slices.Equal(order[:len(afterCut)], afterCut) {
		t.Errorf("proven, no monitor window: %q %v", g, order)
	}

	checked := mustSpec(t, strings.Replace(helloSpec, "    command: ./hello worker\n", "    command: ./hello worker\n    health: {command: [./hello, ping]}\n", 1))
	in.Target = target(t, "v4", checked)
	if g, _ := where(in); g["worker"] != "after: ready when `./hello ping` passes" {
		t.Errorf("proven, a worker with a health command: %q", g)
	}

	in = DeployInput{App: "hello", Kind: "deploy", Target: target(t, "v4", sp), From: "v3", Observed: v3Running(t)}
	if g, _ := where(in); g["web"] != "before: ready on http /healthz" || g["worker"] != "before: ready after 5s up" {
		t.Errorf("not proven: %q", g)
	}
}
