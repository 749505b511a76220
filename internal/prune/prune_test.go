package prune

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// testManager is a Manager on an engine with the real process runtime and
// a real store, in a temporary directory.
func testManager(t *testing.T) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := process.New(process.Options{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	e := engine.New(engine.Options{Store: st, DataDir: dir, Logger: log, Proxy: proxy.New(proxy.Options{Logger: log}),
		Runtimes: map[string]runtime.Runtime{"process": rt}})
	return New(e, st, log), dir
}

// release records a release of app with an artifact directory of its own
// (or art's, when given: a config-only release) and makes it active; the
// one active before retires.
func release(t *testing.T, m *Manager, dir, app string, keep int, art string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := m.st.EnsureApp(ctx, app, "process"); err != nil {
		t.Fatal(err)
	}
	d := &store.Deploy{App: app, Kind: store.KindDeploy, Owner: "test"}
	if err := m.st.CreateDeploy(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &store.Release{App: app, Cause: "deploy", Runtime: "process", DeployID: d.ID,
		Spec: &spec.Spec{App: app, Runtime: "process", Deploy: spec.Deploy{KeepReleases: keep}}}
	if err := m.st.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if art == "" {
		art = filepath.Join(dir, "releases", app, r.ID())
		if err := os.MkdirAll(art, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(art, "app"), []byte(strings.Repeat("x", 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.Artifact = runtime.Artifact{Runtime: "process", Ref: art}
	if err := m.st.SetReleaseArtifact(ctx, app, r.Version, r.Artifact); err != nil {
		t.Fatal(err)
	}
	if err := m.st.CommitCutover(ctx, d.ID, app, r.Version); err != nil {
		t.Fatal(err)
	}
	return art
}

// `moorage prune` removes the artifacts beyond keep_releases, counted in
// artifacts (a config-only release costs nothing), oldest first, with
// their size; a dry run says the same and removes nothing; the active
// release's and the kept ones' stay; a second prune finds nothing.
func TestPruneBeyondTheWindow(t *testing.T) {
	m, dir := testManager(t)
	ctx := context.Background()
	var arts []string
	for i := 0; i < 4; i++ {
		arts = append(arts, release(t, m, dir, "hello", 2, ""))
	}
	release(t, m, dir, "hello", 2, arts[3]) // v5: a config change of v4

	rep, err := m.Prune(ctx, "hello", true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range rep.Artifacts {
		got = append(got, a.Release)
		if a.Bytes != 1000 {
			t.Errorf("%s: %d bytes, want 1000", a.Release, a.Bytes)
		}
	}
	if strings.Join(got, " ") != "v1 v2" || !rep.DryRun {
		t.Fatalf("dry run: %+v", rep)
	}
	for _, a := range arts {
		if _, err := os.Stat(a); err != nil {
			t.Fatalf("a dry run removed %s", a)
		}
	}
	if rep, err = m.Prune(ctx, "hello", false); err != nil || len(rep.Artifacts) != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	for i, a := range arts {
		_, err := os.Stat(a)
		if gone := errors.Is(err, os.ErrNotExist); gone != (i < 2) {
			t.Errorf("v%d's artifact gone: %v, want %v", i+1, gone, i < 2)
		}
	}
	if rep, err = m.Prune(ctx, "hello", false); err != nil || len(rep.Artifacts) != 0 {
		t.Fatalf("a second prune: %+v %v", rep, err)
	}
	if _, err := m.Prune(ctx, "nosuch", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("prune of an app that does not exist: %v", err)
	}
}

// Prune is refused while another operation holds the app's lock (what a
// deploy is about to start must not go); a dry run changes nothing and
// takes no lock.
func TestPruneTakesTheLock(t *testing.T) {
	m, dir := testManager(t)
	ctx := context.Background()
	release(t, m, dir, "hello", 0, "")
	if err := m.st.AcquireLock(ctx, store.Lock{App: "hello", Owner: "alice", Operation: "deploy v2", Server: "other"}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Prune(ctx, "hello", false)
	var le *store.LockedError
	if !errors.As(err, &le) || le.Lock.Operation != "deploy v2" {
		t.Fatalf("prune while a deploy holds the lock: %v", err)
	}
	if _, err := m.Prune(ctx, "hello", true); err != nil {
		t.Fatalf("dry run while locked: %v", err)
	}
	if err := m.st.ReleaseLock(ctx, "hello", "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prune(ctx, "hello", false); err != nil {
		t.Fatalf("prune once the lock is free: %v", err)
	}
	if l, err := m.st.GetLock(ctx, "hello"); err == nil {
		t.Fatalf("prune left its lock: %+v", l)
	}
}

// The log retention runs in the background once the engine starts: the
// log of an instance that no longer runs, older than the retention's
// max age, goes.
func TestJanitorRunsInTheBackground(t *testing.T) {
	m, dir := testManager(t)
	m.every = 20 * time.Millisecond
	release(t, m, dir, "hello", 0, "")
	old := filepath.Join(dir, "logs", "hello", "hello-web-v1-1.log")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("a line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-spec.DefaultLogMaxAge - time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.e.Close()
	for {
		if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the old log is still there after a minute")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
