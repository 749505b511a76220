package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Prune is refused while another operation holds the app's lock (what a
// deploy is about to start must not go); a dry run changes nothing and
// takes no lock.
func TestPruneTakesTheLock(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	activate(t, e, "hello", &spec.Backups{Schedule: "0 3 * * *", Keep: 7})
	unlock, err := e.lock(ctx, newOp(), "hello", "alice", "deploy v2", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Prune(ctx, "hello", false)
	var le *store.LockedError
	if !errors.As(err, &le) || le.Lock.Operation != "deploy v2" {
		t.Fatalf("prune while a deploy holds the lock: %v", err)
	}
	if _, err := e.Prune(ctx, "hello", true); err != nil {
		t.Fatalf("dry run while locked: %v", err)
	}
	unlock()
	if _, err := e.Prune(ctx, "hello", false); err != nil {
		t.Fatalf("prune once the lock is free: %v", err)
	}
	if l, err := e.st.GetLock(ctx, "hello"); err == nil {
		t.Fatalf("prune left its lock: %+v", l)
	}
}
