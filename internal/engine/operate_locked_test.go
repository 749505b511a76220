package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/moorage/moorage/internal/store"
)

// OperateLocked holds the app's lock while fn runs, gives fn the app and
// its active release, and releases the lock when fn returns.
func TestOperateLockedHoldsTheLockDuringFn(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	activate(t, e, "hello", nil)
	op := newOp()
	ran := false
	err := e.OperateLocked(ctx, op, LockedOperation{App: "hello", Owner: "alice", Lock: "backup", Wait: true, NeedApp: true},
		func(ctx context.Context, a *store.App, rel *store.Release) error {
			ran = true
			l, err := e.st.GetLock(ctx, "hello")
			if err != nil {
				t.Fatalf("no lock during fn: %v", err)
			}
			if l.Owner != "alice" || l.Operation != "backup" {
				t.Fatalf("lock during fn: %+v", l)
			}
			if e.Running("hello") != op {
				t.Fatal("the lock is not op's during fn")
			}
			if a == nil || a.Name != "hello" || rel == nil || rel.Version != a.Current || a.Current == 0 {
				t.Fatalf("fn got app %+v, release %+v", a, rel)
			}
			return nil
		})
	if err != nil || !ran {
		t.Fatalf("OperateLocked: ran %v, %v", ran, err)
	}
	if l, err := e.st.GetLock(ctx, "hello"); err == nil {
		t.Fatalf("lock left after fn: %+v", l)
	}
	if e.Running("hello") != nil {
		t.Fatal("op still running after fn")
	}

	// fn's error is returned, and the lock released all the same.
	boom := errors.New("boom")
	err = e.OperateLocked(ctx, newOp(), LockedOperation{App: "hello", Lock: "backup", NeedApp: true},
		func(context.Context, *store.App, *store.Release) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	if l, err := e.st.GetLock(ctx, "hello"); err == nil {
		t.Fatalf("lock left after fn failed: %+v", l)
	}
}

// Held by another operation: refused (worded by LockErr), fn not run.
func TestOperateLockedRefusedWhileLocked(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	activate(t, e, "hello", nil)
	unlock, err := e.lock(ctx, newOp(), "hello", "bob", "deploy v2", false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	err = e.OperateLocked(ctx, newOp(), LockedOperation{
		App: "hello", Lock: "prune", NeedApp: true,
		LockErr: func(err error) error { return fmt.Errorf("wait for the lock of hello: %w", err) },
	}, func(context.Context, *store.App, *store.Release) error {
		t.Fatal("fn ran without the lock")
		return nil
	})
	var le *store.LockedError
	if !errors.As(err, &le) || le.Lock.Operation != "deploy v2" {
		t.Fatalf("while locked: %v", err)
	}
	if want := "wait for the lock of hello: " + le.Error(); err.Error() != want {
		t.Fatalf("while locked: %q, want %q", err, want)
	}
}

// An app with no record: the store's error, as reading it gives, and no
// lock left behind; without NeedApp, fn is given no app.
func TestOperateLockedAppMissing(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	_, want := e.st.GetApp(ctx, "nosuch")
	if want == nil {
		t.Fatal("nosuch exists")
	}
	err := e.OperateLocked(ctx, newOp(), LockedOperation{App: "nosuch", Lock: "backup", NeedApp: true,
		NotDeployed: func() error { return fmt.Errorf("back up nosuch: %w", ErrNotDeployed) },
	}, func(context.Context, *store.App, *store.Release) error {
		t.Fatal("fn ran for an app with no record")
		return nil
	})
	if !errors.Is(err, store.ErrNotFound) || err.Error() != want.Error() || err.Error() != "app: not found" {
		t.Fatalf("app missing: %v, want %v", err, want)
	}
	if l, err := e.st.GetLock(ctx, "nosuch"); err == nil {
		t.Fatalf("lock left: %+v", l)
	}
	ran := false
	err = e.OperateLocked(ctx, newOp(), LockedOperation{App: "nosuch", Lock: "delete old backups"},
		func(_ context.Context, a *store.App, rel *store.Release) error {
			ran = true
			if a != nil || rel != nil {
				t.Fatalf("fn got app %+v, release %+v", a, rel)
			}
			return nil
		})
	if err != nil || !ran {
		t.Fatalf("without NeedApp: ran %v, %v", ran, err)
	}
}

// An app with no active release: NotDeployed's error, fn not run; without
// NotDeployed, fn is given the app and no release.
func TestOperateLockedNotDeployed(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	if _, err := e.st.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	err := e.OperateLocked(ctx, newOp(), LockedOperation{App: "hello", Lock: "backup", NeedApp: true,
		NotDeployed: func() error { return fmt.Errorf("back up hello: %w", ErrNotDeployed) },
	}, func(context.Context, *store.App, *store.Release) error {
		t.Fatal("fn ran with no active release")
		return nil
	})
	if !errors.Is(err, ErrNotDeployed) || err.Error() != "back up hello: app has no active release" {
		t.Fatalf("not deployed: %v", err)
	}
	if l, err := e.st.GetLock(ctx, "hello"); err == nil {
		t.Fatalf("lock left: %+v", l)
	}
	ran := false
	err = e.OperateLocked(ctx, newOp(), LockedOperation{App: "hello", Lock: "recover", NeedApp: true},
		func(_ context.Context, a *store.App, rel *store.Release) error {
			ran = true
			if a == nil || a.Name != "hello" || rel != nil {
				t.Fatalf("fn got app %+v, release %+v", a, rel)
			}
			return nil
		})
	if err != nil || !ran {
		t.Fatalf("without NotDeployed: ran %v, %v", ran, err)
	}
}

// With no Lock, nothing is locked: fn runs beside an operation that holds
// the lock (a one-off during a deploy).
func TestOperateLockedWithoutLock(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	activate(t, e, "hello", nil)
	unlock, err := e.lock(ctx, newOp(), "hello", "bob", "deploy v2", false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ran := false
	err = e.OperateLocked(ctx, nil, LockedOperation{App: "hello", NeedApp: true},
		func(ctx context.Context, a *store.App, rel *store.Release) error {
			ran = true
			if l, err := e.st.GetLock(ctx, "hello"); err != nil || l.Operation != "deploy v2" {
				t.Fatalf("lock during fn: %+v, %v", l, err)
			}
			if rel == nil || rel.Version != a.Current {
				t.Fatalf("fn got release %+v", rel)
			}
			return nil
		})
	if err != nil || !ran {
		t.Fatalf("without a lock: ran %v, %v", ran, err)
	}
}

// A one-off reads the app and its active release through OperateLocked,
// with the errors it has always given.
func TestRunOneOffErrors(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	_, err := e.RunOneOff(ctx, RunRequest{App: "hello", Command: []string{"true"}})
	if !errors.Is(err, store.ErrNotFound) || err.Error() != "app: not found" {
		t.Fatalf("app missing: %v", err)
	}
	if _, err := e.st.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	code, err := e.RunOneOff(ctx, RunRequest{App: "hello", Command: []string{"true"}})
	if code != -1 || !errors.Is(err, ErrNotDeployed) || err.Error() != "run in hello: app has no active release; deploy it first" {
		t.Fatalf("not deployed: %d, %v", code, err)
	}
	if _, err := e.RunOneOff(ctx, RunRequest{App: "hello"}); err == nil || err.Error() != "no command given: moorage run [SERVICE] -- COMMAND [ARGS...]" {
		t.Fatalf("no command: %v", err)
	}
}
