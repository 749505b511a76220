package plan

import (
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
)

func v3Running(t *testing.T) []runtime.Instance {
	sp := mustSpec(t, helloSpec)
	return []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), running("scheduler", "v3", 1),
		accessory("db", target(t, "v3", sp).AccessoryHash["db"]),
	}
}

// Stop records the stopped page first, then takes every service down as a
// scale to 0 would; start brings them back health-gated and only then
// takes the page away. Accessories are kept by both.
func TestPlanStopStartGolden(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	zero := target(t, "v3", sp)
	for n := range zero.Formation {
		zero.Formation[n] = 0
	}
	stop := StopApp(ConvergeInput{App: "hello", Target: &zero, From: "v3", Observed: v3Running(t)})
	golden(t, stop, "op_stop")
	if m, ok := stop.Steps[0].(Maintenance); !ok || !m.On {
		t.Errorf("stop does not record the stopped page first:\n%s", stop)
	}
	full := target(t, "v3", sp)
	acc := v3Running(t)[4:]
	start := StartApp(ConvergeInput{App: "hello", Target: &full, From: "v3", Observed: acc})
	golden(t, start, "op_start")
	if m, ok := start.Steps[len(start.Steps)-1].(Maintenance); !ok || m.On {
		t.Errorf("start does not end with the stopped page going away:\n%s", start)
	}
}

// A stopped accessory stays stopped through deploys and recovery; one
// that runs although recorded as stopped (a stop a crash interrupted) is
// stopped.
func TestPlanStoppedAccessoryStaysStopped(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v4", sp)
	tg.StoppedAccessories = map[string]bool{"db": true}
	d := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v3", Observed: v3Running(t)[:4]})
	if !strings.Contains(d.String(), "accessory db: stay stopped (moorage accessory start starts it)") {
		t.Errorf("deploy plan:\n%s", d)
	}
	r := Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v4", Observed: v3Running(t)})
	if !strings.Contains(r.String(), "accessory db: stop (stopped with moorage accessory stop)") {
		t.Errorf("recover plan:\n%s", r)
	}
}

func TestPlanAccessoryOpsGolden(t *testing.T) {
	golden(t, AccessoryOp(AccessoryOpInput{App: "hello", Release: "v3", Name: "db", Action: AccessoryStop, Owner: "alice (uid 1000)"}), "op_accessory_stop")
	golden(t, AccessoryOp(AccessoryOpInput{App: "hello", Release: "v3", Name: "db", Action: AccessoryStart, Owner: "alice (uid 1000)"}), "op_accessory_start")
	golden(t, AccessoryOp(AccessoryOpInput{App: "hello", Release: "v4", Name: "db", Action: AccessoryRemove, Owner: "alice (uid 1000)", Volumes: []string{"pgdata"}}), "op_accessory_remove_volumes")
}

// Destroy unroutes first (the proxy answers as for an unknown host before
// anything stops), stops services then accessories, removes artifacts, and
// forgets the app last; volumes and backups are kept and named unless
// --volumes, which deletes them before the records go.
func TestPlanDestroyGolden(t *testing.T) {
	in := DestroyInput{
		App: "hello", Active: "v3", Observed: v3Running(t),
		Hosts:     []string{"hello.example.com", ""},
		Artifacts: []string{"v2", "v3"},
		Volumes:   []string{"pgdata", "data"},
		Backups:   []string{"b-2", "b-1"},
	}
	keep := Destroy(in)
	golden(t, keep, "op_destroy")
	in.DeleteData = true
	all := Destroy(in)
	golden(t, all, "op_destroy_volumes")
	for _, p := range []*Plan{keep, all} {
		if p.Steps[0].Kind() != KindUnroute || p.Steps[len(p.Steps)-1].Kind() != KindForget {
			t.Errorf("destroy must unroute first and forget last:\n%s", p)
		}
	}
	if strings.Contains(keep.String(), "delete volumes") || !strings.Contains(all.String(), "delete volumes data pgdata") {
		t.Errorf("volumes: kept\n%s\ndeleted\n%s", keep, all)
	}
	// Run again after a crash that removed everything but the records.
	again := Destroy(DestroyInput{App: "hello", Volumes: []string{"data"}})
	if len(again.Steps) != 2 || again.Steps[1].Kind() != KindForget {
		t.Errorf("a re-run over a half-done destroy:\n%s", again)
	}
}

// Recovery of an app stopped with `moorage stop` is decided by the planner:
// its services converge to none (one a crash left running is stopped, none
// is started), its accessories run as usual.
func TestPlanRecoverStoppedApp(t *testing.T) {
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v3", sp)
	p := Converge(ConvergeInput{App: "hello", Kind: "recover", Target: &tg, From: "v3", Observed: v3Running(t), Unrouted: true, Stopped: true})
	golden(t, p, "plan_recover_stopped")
	for _, s := range p.Steps {
		if single, ok := s.(Singleton); s.Kind() == KindStart || ok && !single.SkipStart {
			t.Errorf("a stopped app's recovery starts something: %s", s)
		}
	}
}
