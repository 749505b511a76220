package plan

import (
	"errors"
	"testing"

	"github.com/moorage/moorage/internal/store"
)

// The statuses the plan reads are the store's.
func TestReleaseStatusesAreTheStores(t *testing.T) {
	for got, want := range map[string]string{ReleasePending: store.ReleasePending, ReleaseActive: store.ReleaseActive,
		ReleaseRetired: store.ReleaseRetired, ReleaseFailed: store.ReleaseFailed} {
		if got != want {
			t.Errorf("status %q, the store's %q", got, want)
		}
	}
}

// A rollback brings back the newest release before the active one that
// served, or the one asked for if it served.
func TestRollbackSource(t *testing.T) {
	history := []ReleaseStatus{ // newest first
		{6, ReleaseFailed}, {5, ReleaseActive}, {4, ReleaseFailed}, {3, ReleaseRetired}, {2, ReleasePending}, {1, ReleaseRetired},
	}
	for _, c := range []struct {
		to, want int
		err      error
	}{
		{0, 3, nil},
		{1, 1, nil},
		{3, 3, nil},
		{5, 0, ErrAlreadyActive},
		{4, 0, ErrNeverServed},
		{2, 0, ErrNeverServed},
		{9, 0, ErrNoSuchRelease},
	} {
		got, err := RollbackSource(5, c.to, history)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("to %d: got %d, %v; want %d, %v", c.to, got, err, c.want, c.err)
		}
	}
	if _, err := RollbackSource(1, 0, []ReleaseStatus{{1, ReleaseActive}}); !errors.Is(err, ErrNoEarlier) {
		t.Errorf("the first release: %v", err)
	}
	// A release newer than the active one (the active one was rolled back
	// to) is not what a plain rollback brings back.
	if got, err := RollbackSource(3, 0, []ReleaseStatus{{5, ReleaseRetired}, {4, ReleaseRetired}, {3, ReleaseActive}, {2, ReleaseRetired}}); got != 2 || err != nil {
		t.Errorf("after a rollback to v3: %d %v, want v2", got, err)
	}
}
