package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/store"
)

// A server restart interrupts pipelines at every stage; CloseInterrupted
// ends each as what happened: deployed nothing, or as its deploy did.
func TestCloseInterrupted(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureApp(ctx, "web", "process"); err != nil {
		t.Fatal(err)
	}
	// pipeline reaches stage, and its deploy (if any) ends as deployStatus.
	pipelineAt := func(stage string, deploy bool, deployStatus string) (p, d *store.Deploy) {
		p = &store.Deploy{App: "web", Kind: Kind, Owner: "webhook x"}
		if err := st.CreateDeploy(ctx, p); err != nil {
			t.Fatal(err)
		}
		for _, s := range stages {
			seq, err := st.StartStep(ctx, p.ID, s, "")
			if err != nil {
				t.Fatal(err)
			}
			if s == stage {
				break
			}
			st.FinishStep(ctx, p.ID, seq, store.StepOK, "")
		}
		if deploy {
			d = &store.Deploy{App: "web", Kind: store.KindDeploy, Owner: "webhook x (pipeline, abc)", Parent: p.ID}
			if err := st.CreateDeploy(ctx, d); err != nil {
				t.Fatal(err)
			}
			if deployStatus != store.DeployRunning {
				st.FinishDeploy(ctx, d.ID, deployStatus, "")
			}
		}
		return p, d
	}
	type want struct {
		status, reason string
	}
	type tc struct {
		name  string
		p, d  *store.Deploy
		want  want
		quiet bool // the notifier skips it: the deploy's own record is notified
	}
	var cases []tc
	add := func(name, stage string, deploy bool, deployStatus string, w want, quiet bool) {
		p, d := pipelineAt(stage, deploy, deployStatus)
		cases = append(cases, tc{name, p, d, w, quiet})
	}
	add("during the build", "build", false, "", want{store.DeployFailed, "during its build stage: nothing was deployed"}, false)
	add("deploy stage, before its deploy was recorded", "deploy", false, "", want{store.DeployFailed, "during its deploy stage: nothing was deployed"}, false)
	add("deploy succeeded", "deploy", true, store.DeploySucceeded, want{store.DeploySucceeded, "succeeded (the pipeline was interrupted"}, true)
	add("deploy rolled back", "deploy", true, store.DeployRolledBack, want{store.DeployFailed, "rolled_back (the pipeline was interrupted"}, true)
	add("during notify", "notify", true, store.DeploySucceeded, want{store.DeploySucceeded, "succeeded"}, true)
	add("deploy still recovering", "deploy", true, store.DeployRunning, want{store.DeployFailed, "its own record tells"}, true)

	if err := CloseInterrupted(ctx, st); err != nil {
		t.Fatal(err)
	}
	ended, err := st.DeploysEndedAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	child := map[int64]int64{} // pipeline → the deploy the notifier reads as its own record
	for _, d := range ended {
		child[d.ID] = d.Child
	}
	for _, c := range cases {
		got, err := st.GetDeploy(ctx, c.p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != c.want.status || !strings.Contains(got.Reason, c.want.reason) {
			t.Errorf("%s: pipeline ended %s %q, want %s with %q", c.name, got.Status, got.Reason, c.want.status, c.want.reason)
		}
		if quiet := got.Status == store.DeploySucceeded || child[c.p.ID] != 0; quiet != c.quiet {
			t.Errorf("%s: reason %q: the notifier skips it: %v, want %v", c.name, got.Reason, quiet, c.quiet)
		}
		if c.d != nil && child[c.p.ID] != c.d.ID {
			t.Errorf("%s: the pipeline's child is #%d, want its deploy #%d", c.name, child[c.p.ID], c.d.ID)
		}
		for _, s := range got.Steps {
			if s.Outcome == store.StepRunning {
				t.Errorf("%s: step %s left running", c.name, s.Name)
			}
		}
		if c.name == "deploy still recovering" {
			// The deploy's own record is the engine's to close.
			if d, _ := st.GetDeploy(ctx, c.d.ID); d.Status != store.DeployRunning {
				t.Errorf("%s: the deploy's record was closed by the pipeline's recovery: %s", c.name, d.Status)
			}
		}
	}
	// Other kinds are not the pipeline's to close.
	other := &store.Deploy{App: "web", Kind: store.KindDeploy}
	st.CreateDeploy(ctx, other)
	if err := CloseInterrupted(ctx, st); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.GetDeploy(ctx, other.ID); d.Status != store.DeployRunning {
		t.Errorf("a deploy record was closed by the pipeline's recovery: %s", d.Status)
	}
}
