package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMigrationsIdempotent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "moorage.db")
	for i := 0; i < 2; i++ {
		s, err := Open(context.Background(), p)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		s.Close()
	}
}

func TestReleaseLifecycleAndCutover(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	sp := &spec.Spec{App: "hello", Runtime: "process", Services: map[string]*spec.Service{"web": {Name: "web", Replicas: 2}}}
	var ids []int
	for i := 0; i < 2; i++ {
		d := &Deploy{App: "hello", Kind: KindDeploy, Owner: "test"}
		if err := s.CreateDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
		r := &Release{App: "hello", Cause: "deploy", Runtime: "process", Spec: sp, Config: Config{Env: map[string]string{"A": "1"}}, Formation: map[string]int{"web": 2}, DeployID: d.ID}
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.SetReleaseArtifact(ctx, "hello", r.Version, runtime.Artifact{Runtime: "process", Ref: "/x"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CommitCutover(ctx, d.ID, "hello", r.Version); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Version)
	}
	a, _ := s.GetApp(ctx, "hello")
	if a.Current != ids[1] {
		t.Fatalf("current %d", a.Current)
	}
	rels, _ := s.ListReleases(ctx, "hello")
	if rels[0].Status != ReleaseActive || rels[1].Status != ReleaseRetired {
		t.Fatalf("statuses %s %s", rels[0].Status, rels[1].Status)
	}
	// An active release's artifact cannot be changed.
	if err := s.SetReleaseArtifact(ctx, "hello", ids[0], runtime.Artifact{Ref: "/y"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("artifact of a retired release changed: %v", err)
	}
	if rels[0].Spec.Services["web"].Replicas != 2 || rels[0].Config.Env["A"] != "1" {
		t.Fatalf("release round trip: %+v", rels[0])
	}
}

func TestLocks(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.AcquireLock(ctx, Lock{App: "a", Owner: "alice", Operation: "deploy", Server: "s1"}); err != nil {
		t.Fatal(err)
	}
	err := s.AcquireLock(ctx, Lock{App: "a", Owner: "bob", Operation: "deploy", Server: "s1"})
	var le *LockedError
	if !errors.As(err, &le) || le.Lock.Owner != "alice" || !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	// A new server process clears the old one's locks.
	stale, err := s.ClearStaleLocks(ctx, "s2")
	if err != nil || len(stale) != 1 {
		t.Fatalf("clear: %v %v", stale, err)
	}
	if err := s.AcquireLock(ctx, Lock{App: "a", Owner: "bob", Operation: "deploy", Server: "s2"}); err != nil {
		t.Fatal(err)
	}
}

func TestStepOutputKeepsTail(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	s.EnsureApp(ctx, "a", "process")
	d := &Deploy{App: "a", Kind: KindDeploy, Owner: "t"}
	s.CreateDeploy(ctx, d)
	seq, _ := s.StartStep(ctx, d.ID, "build", "")
	big := make([]byte, MaxStepOutput*2)
	for i := range big {
		big[i] = 'x'
	}
	big[len(big)-1] = 'E'
	s.FinishStep(ctx, d.ID, seq, StepOK, string(big))
	got, _ := s.GetDeploy(ctx, d.ID)
	out := got.Steps[0].Output
	if len(out) > MaxStepOutput+8 || out[len(out)-1] != 'E' {
		t.Fatalf("output len %d", len(out))
	}
	// Finishing the deploy interrupts a running step.
	s.StartStep(ctx, d.ID, "start", "")
	s.FinishDeploy(ctx, d.ID, DeployFailed, "boom")
	got, _ = s.GetDeploy(ctx, d.ID)
	if got.Steps[1].Outcome != StepInterrupted || got.Phase != "start" {
		t.Fatalf("step %+v phase %s", got.Steps[1], got.Phase)
	}
}

// The database and its -wal and -shm files are readable by their owner
// only, whatever the umask, including those an older version left 0644.
func TestFilesOwnerOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "moorage.db")
	check := func(when string) {
		t.Helper()
		for _, f := range []string{p, p + "-wal", p + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: %s has mode %o, want 600", when, filepath.Base(f), m)
			}
		}
	}
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	check("created")
	s.Close()

	// An older moorage left them world-readable: the next Open fixes that.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	check("reopened")
}

// A release keeps the commit it was built from; one without has none.
func TestReleaseCommit(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.EnsureApp(ctx, "web", "process"); err != nil {
		t.Fatal(err)
	}
	c := &Commit{SHA: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Author: "Alice <a@example.com>", Message: "Add notes", Describe: "v1.2-3-g0123456-dirty"}
	with := &Release{App: "web", Cause: "deploy", Runtime: "process", Commit: c}
	without := &Release{App: "web", Cause: "deploy", Runtime: "process"}
	for _, r := range []*Release{with, without} {
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetRelease(ctx, "web", with.Version)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit == nil || *got.Commit != *c {
		t.Fatalf("commit %+v, want %+v", got.Commit, c)
	}
	got, err = s.GetRelease(ctx, "web", without.Version)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != nil {
		t.Fatalf("a release without a commit reads %+v", got.Commit)
	}
}
