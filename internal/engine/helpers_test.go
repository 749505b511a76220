package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// testEngine is an engine on a real store in a temporary directory, with
// no runtime: enough for the backup bookkeeping (schedules, retention).
func testEngine(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(Options{Store: st, DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// activate makes a release with the given backups section app's active one.
func activate(t *testing.T, e *Engine, app string, b *spec.Backups) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.st.EnsureApp(ctx, app, "process"); err != nil {
		t.Fatal(err)
	}
	d := &store.Deploy{App: app, Kind: store.KindDeploy, Owner: "test"}
	if err := e.st.CreateDeploy(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &store.Release{App: app, Cause: "deploy", Runtime: "process", Spec: &spec.Spec{App: app, Runtime: "process", Backups: b}, DeployID: d.ID}
	if err := e.st.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CommitCutover(ctx, d.ID, app, r.Version); err != nil {
		t.Fatal(err)
	}
}
