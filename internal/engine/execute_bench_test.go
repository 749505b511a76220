package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// BenchmarkExecutorStep measures the executor's own cost of one step: the
// journal before (StartStep), the handler's dispatch, and the journal
// after (FinishStep), with the activate step (one store write) as the
// handler's work. go test -run XXX -bench BenchmarkExecutorStep ./internal/engine
func BenchmarkExecutorStep(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "moorage.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e := New(Options{Store: st, DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := st.EnsureApp(ctx, "hello", "process"); err != nil {
		b.Fatal(err)
	}
	d := &store.Deploy{App: "hello", Kind: store.KindDeploy, Owner: "bench"}
	if err := st.CreateDeploy(ctx, d); err != nil {
		b.Fatal(err)
	}
	rel := &store.Release{App: "hello", Cause: "deploy", Runtime: "process", Spec: &spec.Spec{App: "hello", Runtime: "process"}, DeployID: d.ID}
	if err := st.CreateRelease(ctx, rel); err != nil {
		b.Fatal(err)
	}
	r := &execution{e: e, op: newOp(), deploy: d, rel: rel, known: map[string]*store.Release{rel.ID(): rel}, routed: map[string]string{}}
	steps := []plan.Step{plan.Activate{Release: rel.ID()}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.steps(ctx, steps); err != nil {
			b.Fatal(err)
		}
	}
}
