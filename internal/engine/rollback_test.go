package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// A rollback starts the workers of the release it brings back right after
// its cutover, beside the current release's workers, and waits their
// whole gate before it stops those: a worker that fails its gate then
// fails the rollback clearly, after its commit point, so it is rolled
// back. The current release is active again and its worker, which was
// never stopped, runs on; nothing of the rollback's release runs.
func TestRollbackWorkerFailingAfterCutoverRollsBack(t *testing.T) {
	e := processEngine(t)
	ctx := context.Background()
	flag := filepath.Join(t.TempDir(), "fail")
	text := `app: rb
runtime: process
services:
  worker:
    command: sh -c 'if [ -e ` + flag + ` ]; then exit 3; fi; exec sleep 300'
    min_ready: 2s
deploy:
  monitor: 1s
`
	deploy := func(message string) {
		t.Helper()
		deployText(t, e, text, message)
	}
	deploy("one")
	deploy("two")
	worker := func() runtime.Instance {
		t.Helper()
		obs, err := e.observe(ctx, "rb")
		if err != nil {
			t.Fatal(err)
		}
		var ws []runtime.Instance
		for _, in := range obs {
			if in.Kind == runtime.KindService {
				ws = append(ws, in)
			}
		}
		if len(ws) != 1 || ws[0].ID != "rb-worker-v2-1" || ws[0].State != runtime.StateRunning {
			t.Fatalf("want only rb-worker-v2-1 running, have %+v", ws)
		}
		return ws[0]
	}
	before := worker()

	// v1's worker now exits at once: v3, its rollback, cannot pass its
	// min_ready.
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	op := e.Rollback(RollbackRequest{App: "rb", Owner: "test"})
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	status, err := op.Wait(wctx)
	if status != store.DeployRolledBack || err == nil || !strings.Contains(err.Error(), "rb-worker-v3-1 crashed before it became ready") {
		t.Fatalf("rollback: %s %v", status, err)
	}
	d, err := e.st.GetDeploy(ctx, op.DeployID())
	if err != nil {
		t.Fatal(err)
	}
	cut, start := strings.Index(d.Plan, "cutover:"), strings.Index(d.Plan, "start worker v3 ×1 [1], ready after 2s up")
	stop := strings.Index(d.Plan, "stop rb-worker-v2-1")
	if cut < 0 || start < cut || stop < start {
		t.Fatalf("the rollback's plan does not start v3's worker between the cutover and v2's worker's stop:\n%s", d.Plan)
	}
	var names []string
	for _, s := range d.Steps {
		names = append(names, s.Name+" "+s.Outcome)
	}
	if got := strings.Join(names, ", "); !strings.Contains(got, "cutover ok, start failed, revert:") || strings.Contains(got, "stop ok, singleton") {
		t.Errorf("steps: %s", got)
	}
	if app, err := e.st.GetApp(ctx, "rb"); err != nil || app.Current != 2 {
		t.Fatalf("active release after the failed rollback: %+v %v, want v2", app, err)
	}
	after := worker()
	if after.PID != before.PID || after.Restarts != before.Restarts {
		t.Errorf("v2's worker was stopped or restarted by the failed rollback: %+v, before %+v", after, before)
	}
}
