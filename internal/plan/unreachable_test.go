package plan

import (
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
)

// down marks in as on node2, which is down.
func down(in runtime.Instance) runtime.Instance {
	in.Unreachable, in.Node = true, "node2"
	return in
}

// A singleton whose machine is down cannot be replaced: the deploy is
// refused before anything changes, naming the node. Other services on that
// node, and a singleton of the target release itself, do not block it.
func TestCheckSingletonsRefusesUnreachable(t *testing.T) {
	tg := target(t, "v2", mustSpec(t, helloSpec))
	ok := []runtime.Instance{down(running("worker", "v1", 1)), down(running("web", "v1", 1)), running("scheduler", "v1", 1)}
	if err := CheckSingletons(tg, ok); err != nil {
		t.Fatalf("refused with no singleton down: %v", err)
	}
	if err := CheckSingletons(tg, []runtime.Instance{down(running("scheduler", "v2", 1))}); err != nil {
		t.Fatalf("refused for the target's own singleton: %v", err)
	}
	err := CheckSingletons(tg, append(ok, down(running("scheduler", "v1", 1))))
	if err == nil || !strings.Contains(err.Error(), "hello-scheduler-v1-1 runs on node node2, which is down") || !strings.Contains(err.Error(), "docker node rm --force node2), then deploy again") {
		t.Fatalf("singleton on a down node: %v", err)
	}
}

// The node of the new release's scheduler was lost after the cutover, and
// the monitor saw v4 fail: the revert does not start v3's scheduler (v4's
// may still run; a second must never start), tells v4's to stop when its
// node is back, and completes the rest: web routed back, v3's worker
// started, v4's web drained, v3 active. The outcome names the node and
// what to do. (v3's scheduler and worker were removed by the deploy's
// steps after its cutover.)
func TestPlanRevertSchedulerNodeLost(t *testing.T) {
	tg := target(t, "v3", mustSpec(t, helloSpec))
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2),
		running("web", "v4", 1), running("web", "v4", 2), running("worker", "v4", 1), down(running("scheduler", "v4", 1)),
		accessory("db", tg.AccessoryHash["db"]),
	}
	p := Converge(ConvergeInput{App: "hello", Kind: "revert", Target: &tg, From: "v4", Observed: observed})
	golden(t, p, "plan_revert_scheduler_node_lost")
	checkNeverStarted(t, p, "scheduler")
	held := p.Held()
	for _, want := range []string{"the singleton scheduler of v3 was not started again", "hello-scheduler-v4-1 is on node node2, which is down",
		"a second one must never start", "bring node node2 back", "docker node rm --force node2", "then deploy or roll back again"} {
		if !strings.Contains(held, want) {
			t.Errorf("Held() lacks %q: %s", want, held)
		}
	}
	// Without a lost singleton, nothing is held.
	observed[5] = running("scheduler", "v4", 1)
	if h := Converge(ConvergeInput{App: "hello", Kind: "revert", Target: &tg, From: "v4", Observed: observed}).Held(); h != "" {
		t.Errorf("Held() of a revert with every node up: %s", h)
	}
}

// The node went down after the cutover but before the deploy's singleton
// step: stopping v3's scheduler could not be confirmed, the deploy failed
// there, v4's never started. v3's own scheduler (scaled to 0, its task on
// the lost node) is neither removed nor started again.
func TestPlanRevertOwnSchedulerNodeLost(t *testing.T) {
	tg := target(t, "v3", mustSpec(t, helloSpec))
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), down(inst("scheduler", "v3", 1, runtime.StateExited)),
		running("web", "v4", 1), running("web", "v4", 2), running("worker", "v4", 1),
	}
	p := Converge(ConvergeInput{App: "hello", Kind: "revert", Target: &tg, From: "v4", Observed: observed})
	checkNeverStarted(t, p, "scheduler")
	s := p.String()
	for _, want := range []string{"singleton scheduler: not started again: hello-scheduler-v3-1 is on node node2", "start worker v3", "drain (up to 30s) and stop hello-web-v4-1 hello-web-v4-2", "activate v3"} {
		if !strings.Contains(s, want) {
			t.Errorf("plan lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(p.Held(), "docker node rm --force node2") {
		t.Errorf("Held(): %s", p.Held())
	}
}

// Recovery (or an undo before the cutover) with the active release's
// scheduler running on a node that is down keeps it as it is: nothing
// stops or replaces it, and nothing is held.
func TestPlanRecoverKeepsOwnSchedulerOnLostNode(t *testing.T) {
	tg := target(t, "v3", mustSpec(t, helloSpec))
	observed := []runtime.Instance{running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), down(running("scheduler", "v3", 1)), running("web", "v4", 1)}
	for _, kind := range []string{"recover", "undo"} {
		p := Converge(ConvergeInput{App: "hello", Kind: kind, Target: &tg, From: "v3", Observed: observed})
		if strings.Contains(p.String(), "scheduler") || p.Held() != "" {
			t.Errorf("%s touches the active scheduler on a lost node:\n%s", kind, p)
		}
	}
}

// A stop-first web on a lost node: the revert's cutover does not hold its
// requests for a singleton step that starts nothing, and its old instance
// is neither drained nor waited for.
func TestPlanRevertSingletonWebNodeLost(t *testing.T) {
	tg := target(t, "v1", mustSpec(t, singletonWebSpec))
	observed := []runtime.Instance{running("api", "v1", 1), running("api", "v1", 2),
		down(running("web", "v2", 1)), running("api", "v2", 1), running("api", "v2", 2), running("worker", "v2", 1)}
	p := Converge(ConvergeInput{App: "hello", Kind: "revert", Target: &tg, From: "v2", Observed: observed})
	checkNeverStarted(t, p, "web")
	s := p.String()
	if strings.Contains(s, "wait for its singleton step") || !strings.Contains(s, "singleton web: not started again: hello-web-v2-1 is on node node2") {
		t.Errorf("plan:\n%s", s)
	}
}

// Whatever is lost, a converge plan never starts a singleton while an
// instance of it is on a lost node, and never stops, drains or waits for a
// lost one (that would hang: its stop can never be confirmed).
func TestPlanConvergeNeverStartsBesideLostSingleton(t *testing.T) {
	tg := target(t, "v2", mustSpec(t, helloSpec))
	for i, observed := range [][]runtime.Instance{
		{down(running("scheduler", "v1", 1))},
		{down(inst("scheduler", "v1", 1, runtime.StateRestarting))},
		{down(inst("scheduler", "v2", 1, runtime.StateExited))},
		{down(running("scheduler", "v1", 1)), inst("scheduler", "v2", 1, runtime.StateExited)},
		{inst("scheduler", "v1", 1, runtime.StateExited), down(running("scheduler", "v3", 1))},
	} {
		for _, kind := range []string{"revert", "recover", "undo"} {
			p := Converge(ConvergeInput{App: "hello", Kind: kind, Target: &tg, From: "v1", Observed: observed})
			checkNeverStarted(t, p, "scheduler")
			if p.Held() == "" {
				t.Errorf("case %d %s: nothing held:\n%s", i, kind, p)
			}
			for _, s := range p.Steps {
				var ids []string
				switch s := s.(type) {
				case Stop:
					ids = s.IDs
				case Drain:
					ids = s.IDs
				case Singleton:
					ids = s.Old
				}
				for _, id := range ids {
					for _, o := range observed {
						if o.ID == id && o.Unreachable {
							t.Errorf("case %d %s: waits for %s on a lost node:\n%s", i, kind, id, p)
						}
					}
				}
			}
		}
	}
}

// checkNeverStarted fails if p starts an instance of svc.
func checkNeverStarted(t *testing.T, p *Plan, svc string) {
	t.Helper()
	for _, s := range p.Steps {
		switch s := s.(type) {
		case Singleton:
			if s.Service == svc && (!s.SkipStart || len(s.Lost) == 0) {
				t.Fatalf("plan starts %s (or holds nothing):\n%s", svc, p)
			}
		case Start:
			for _, st := range s.Starts {
				if st.Service == svc {
					t.Fatalf("plan starts %s:\n%s", svc, p)
				}
			}
		}
	}
}
