package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// greet is a step the plan package does not know: a package outside the
// engine brings its own step type and registers its handler.
type greet struct{ Release, Who string }

func (g greet) Kind() plan.Kind   { return "greet" }
func (g greet) ReleaseID() string { return g.Release }
func (g greet) String() string    { return "greet " + g.Who }

// The executor hands each step to the handler registered for its kind,
// journaling it first (its name and text) and its output and outcome
// after; a kind nobody handles fails the step.
func TestExecutorRunsRegisteredHandlers(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	activate(t, e, "hello", &spec.Backups{})
	var seen []string
	e.Handle("greet", On(func(ctx context.Context, x *Exec, s greet) error {
		rel, err := x.Release(ctx, s.Release)
		if err != nil {
			return err
		}
		seen = append(seen, x.App()+" "+rel.ID()+" "+s.Who)
		x.Printf("hello, %s", s.Who)
		return nil
	}))
	d := &store.Deploy{App: "hello", Kind: store.KindDeploy, Owner: "test"}
	if err := e.st.CreateDeploy(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &execution{e: e, op: newOp(), deploy: d, rel: &store.Release{App: "hello"}, known: map[string]*store.Release{}, routed: map[string]string{}}
	if err := r.steps(ctx, []plan.Step{greet{Release: "v1", Who: "world"}}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != "hello v1 world" {
		t.Fatalf("handler saw %v", seen)
	}
	// A built-in kind goes through the same registry.
	if err := r.steps(ctx, []plan.Step{plan.Build{Release: "v1"}}); err == nil || !strings.Contains(err.Error(), "build: nothing was uploaded to build") {
		t.Fatalf("a build with nothing uploaded: %v", err)
	}
	e.Handle("greet", nil)
	if err := r.steps(ctx, []plan.Step{greet{Release: "v1", Who: "nobody"}}); err == nil || !strings.Contains(err.Error(), `unknown step "greet"`) {
		t.Fatalf("a step with no handler: %v", err)
	}
	got, err := e.st.GetDeploy(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Steps) < 1 || got.Steps[0].Name != "greet" || got.Steps[0].Detail != "greet world" ||
		got.Steps[0].Outcome != store.StepOK || !strings.Contains(got.Steps[0].Output, "hello, world") {
		t.Fatalf("journal: %+v", got.Steps)
	}
	if last := got.Steps[len(got.Steps)-1]; last.Outcome != store.StepFailed {
		t.Fatalf("the unhandled step journaled as %+v", last)
	}
}
