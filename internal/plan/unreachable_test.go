package plan

import (
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
)

// A singleton whose machine is down cannot be replaced: the deploy is
// refused before anything changes, naming the node. Other services on that
// node, and a singleton of the target release itself, do not block it.
func TestCheckSingletonsRefusesUnreachable(t *testing.T) {
	tg := target(t, "v2", mustSpec(t, helloSpec))
	down := func(in runtime.Instance) runtime.Instance {
		in.Unreachable, in.Node = true, "node2"
		return in
	}
	ok := []runtime.Instance{down(running("worker", "v1", 1)), down(running("web", "v1", 1)), running("scheduler", "v1", 1)}
	if err := CheckSingletons(tg, ok); err != nil {
		t.Fatalf("refused with no singleton down: %v", err)
	}
	if err := CheckSingletons(tg, []runtime.Instance{down(running("scheduler", "v2", 1))}); err != nil {
		t.Fatalf("refused for the target's own singleton: %v", err)
	}
	err := CheckSingletons(tg, append(ok, down(running("scheduler", "v1", 1))))
	if err == nil || !strings.Contains(err.Error(), "hello-scheduler-v1-1 runs on node node2, which is down") || !strings.Contains(err.Error(), "docker node rm --force node2") {
		t.Fatalf("singleton on a down node: %v", err)
	}
}
