package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// A rollback to the release the last deploy replaced, within its
// keep_warm: its web instances still run, unrouted, so the rollback routes
// them at once (each probed once), before the target's own web starts; the
// target's own take over at its cutover, the commit point. The release it
// rolls back from stays warm in turn; the warm source's instances are
// drained and stopped once the target's own serve.
func TestPlanRollbackServesFromWarmWeb(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), running("scheduler", "v3", 1),
		running("web", "v2", 1), running("web", "v2", 2), // kept warm by the deploy of v3
		accessory("db", target(t, "v3", sp).AccessoryHash["db"]),
	}
	p := Deploy(DeployInput{App: "hello", Kind: "rollback", Target: target(t, "v4", sp), From: "v3", Observed: observed, Proven: true, Source: "v2"})
	golden(t, p, "op_rollback_warm")
	var kinds []Kind
	for _, s := range p.Steps {
		kinds = append(kinds, s.Kind())
	}
	serve, start, cut := -1, -1, -1
	for i, k := range kinds {
		switch {
		case k == KindServeWarm && serve < 0:
			serve = i
		case k == KindStart && start < 0:
			start = i
		case k == KindCutover && cut < 0:
			cut = i
		}
	}
	if serve < 0 || serve > start || start > cut {
		t.Fatalf("want serve-warm, then start, then the cutover; steps %v", kinds)
	}
	sw := p.Steps[serve].(ServeWarm)
	if want := []string{"hello-web-v2-1", "hello-web-v2-2"}; sw.Source != "v2" || len(sw.Services) != 1 || !reflect.DeepEqual(sw.Services[0].IDs, want) || sw.Services[0].Gate.Kind != "http" {
		t.Errorf("serve-warm step %+v", sw)
	}
	text := p.String()
	for _, want := range []string{"drain (up to 30s) and stop hello-web-v2-1 hello-web-v2-2", "keep v3's web warm for 10m"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
}

// No serve-warm step when the old code must not serve first, or cannot
// serve every routed service.
func TestPlanRollbackWithoutWarmWeb(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	base := []runtime.Instance{running("web", "v3", 1), running("worker", "v3", 1), running("scheduler", "v3", 1),
		accessory("db", target(t, "v3", sp).AccessoryHash["db"])}
	exited := running("web", "v2", 1)
	exited.State = runtime.StateExited
	for _, c := range []struct {
		name     string
		in       DeployInput
		observed []runtime.Instance
	}{
		{"no warm instance", DeployInput{Source: "v2"}, nil},
		{"the warm one exited", DeployInput{Source: "v2"}, []runtime.Instance{exited}},
		{"release tasks run first", DeployInput{Source: "v2", RunTasks: true}, []runtime.Instance{running("web", "v2", 1)}},
		{"not a rollback", DeployInput{}, []runtime.Instance{running("web", "v2", 1)}},
	} {
		in := c.in
		in.App, in.Kind, in.Target, in.From, in.Proven = "hello", "rollback", target(t, "v4", sp), "v3", true
		in.Observed = append(append([]runtime.Instance{}, base...), c.observed...)
		p := Deploy(in)
		for _, s := range p.Steps {
			if s.Kind() == KindServeWarm {
				t.Errorf("%s: plan serves from warm instances:\n%s", c.name, p)
			}
		}
	}
	// A stop-first web never has a warm instance to serve from.
	single := mustSpec(t, singletonWebSpec)
	p := Deploy(DeployInput{App: "hello", Kind: "rollback", Target: target(t, "v3", single), From: "v2", Proven: true, Source: "v1",
		Observed: []runtime.Instance{running("web", "v2", 1), running("api", "v2", 1), running("api", "v1", 1), running("web", "v1", 1)}})
	if strings.Contains(p.String(), "serve at once") {
		t.Errorf("a singleton web served from warm instances:\n%s", p)
	}
}

// keep_warm: 0 stops the old web at the end of the deploy, drained; any
// other old web (a release kept warm before) is drained and stopped too.
func TestPlanKeepWarm(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	observed := []runtime.Instance{running("web", "v3", 1), running("worker", "v3", 1), running("scheduler", "v3", 1),
		running("web", "v2", 1), accessory("db", target(t, "v3", sp).AccessoryHash["db"])}
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: target(t, "v4", sp), From: "v3", Observed: observed})
	for _, want := range []string{"drain (up to 30s) and stop hello-web-v2-1\n", "keep v3's web warm for 10m (deploy.keep_warm), unrouted: hello-web-v3-1;"} {
		if !strings.Contains(p.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, p)
		}
	}
	moved := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: target(t, "v4", sp), From: "v3", Observed: observed, Moved: true})
	if !strings.Contains(moved.String(), "drain (up to 30s) and stop hello-web-v2-1 hello-web-v3-1") || strings.Contains(moved.String(), "warm") {
		t.Errorf("a move to another runtime keeps a web warm on the one it leaves:\n%s", moved)
	}
	off := mustSpec(t, helloSpec)
	off.Deploy.KeepWarm = 0
	p = Deploy(DeployInput{App: "hello", Kind: "deploy", Target: target(t, "v4", off), From: "v3", Observed: observed})
	if !strings.Contains(p.String(), "drain (up to 30s) and stop hello-web-v2-1 hello-web-v3-1") || strings.Contains(p.String(), "warm") {
		t.Errorf("keep_warm 0:\n%s", p)
	}
}

// Scale and recovery leave the warm release's web running (Warm); without
// it, its instances are drained and stopped like any stray old web.
func TestPlanConvergeLeavesWarmWeb(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v3", sp)
	observed := []runtime.Instance{running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), running("scheduler", "v3", 1),
		running("web", "v2", 1), accessory("db", tg.AccessoryHash["db"])}
	p := Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v3", Observed: observed, Warm: "v2"})
	if strings.Contains(p.String(), "hello-web-v2-1") || !p.Quiet() {
		t.Errorf("recovery touched the warm web:\n%s", p)
	}
	p = Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v3", Observed: observed})
	if !strings.Contains(p.String(), "and stop hello-web-v2-1") {
		t.Errorf("recovery kept a web that is not warm:\n%s", p)
	}
	p = Converge(ConvergeInput{App: "hello", Kind: "stop", Target: &tg, From: "v3", Observed: observed, Warm: "v2", Stopped: true})
	if !strings.Contains(p.String(), "hello-web-v2-1") {
		t.Errorf("stopping the app kept the warm web:\n%s", p)
	}
}

// Once keep_warm is over, the web instances of releases other than the
// active one (and one still warm) stop; workers, singletons and
// accessories are not the cool-down's.
func TestPlanCoolDown(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	single := mustSpec(t, singletonWebSpec)
	observed := []runtime.Instance{running("web", "v3", 1), running("worker", "v3", 1),
		running("web", "v2", 1), running("web", "v2", 2), running("worker", "v2", 1), running("web", "v1", 1),
		running("web", "v0", 1), accessory("db", "h")}
	specs := map[string]*spec.Spec{"v3": sp, "v2": sp, "v1": sp, "v0": single}
	got := CoolDown(CoolDownInput{Active: "v3", Observed: observed, Specs: specs})
	if want := []string{"hello-web-v1-1", "hello-web-v2-1", "hello-web-v2-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cool-down stops %v, want %v", got, want)
	}
	got = CoolDown(CoolDownInput{Active: "v3", Warm: "v2", Observed: observed, Specs: specs})
	if want := []string{"hello-web-v1-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cool-down with v2 still warm stops %v, want %v", got, want)
	}
}

// The release kept warm is the one the active release's deploy replaced,
// for keep_warm from the end of that deploy.
func TestWarmRelease(t *testing.T) {
	ended := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	base := WarmInput{Active: 5, KeepWarm: 10 * time.Minute, From: 4, Ended: ended}
	for _, c := range []struct {
		name string
		in   func(WarmInput) WarmInput
		want string
		till time.Time
	}{
		{"within keep_warm", func(w WarmInput) WarmInput { w.Now = ended.Add(time.Minute); return w }, "v4", ended.Add(10 * time.Minute)},
		{"over", func(w WarmInput) WarmInput { w.Now = ended.Add(10 * time.Minute); return w }, "", time.Time{}},
		{"keep_warm 0", func(w WarmInput) WarmInput { w.KeepWarm, w.Now = 0, ended; return w }, "", time.Time{}},
		{"the first deploy", func(w WarmInput) WarmInput { w.From, w.Now = 0, ended; return w }, "", time.Time{}},
		{"a scale (the same release)", func(w WarmInput) WarmInput { w.From, w.Now = 5, ended; return w }, "", time.Time{}},
		{"its deploy still runs", func(w WarmInput) WarmInput { w.Ended, w.Now = time.Time{}, ended; return w }, "v4", ended.Add(10 * time.Minute)},
	} {
		got, till := WarmRelease(c.in(base))
		if got != c.want || !till.Equal(c.till) {
			t.Errorf("%s: %q until %s, want %q until %s", c.name, got, till, c.want, c.till)
		}
	}
}
