package plan

import (
	"errors"
	"fmt"
)

// ReleaseStatus is a release as the rollback's choice sees it.
type ReleaseStatus struct {
	Version int
	Status  string
}

// Why RollbackSource refuses (the engine words them with the app's
// releases that can be rolled back to).
var (
	ErrAlreadyActive = errors.New("already the active release")
	ErrNoSuchRelease = errors.New("no such release")
	ErrNeverServed   = errors.New("it never served")
	ErrNoEarlier     = errors.New("no earlier release served")
)

// RollbackSource picks the release a rollback brings back, from the app's
// releases (history, newest first) and its active one (current): release
// to when asked (to > 0), which must have served; else the newest release
// before the active one that served (retired).
func RollbackSource(current, to int, history []ReleaseStatus) (int, error) {
	if to != 0 {
		if to == current {
			return 0, ErrAlreadyActive
		}
		for _, r := range history {
			if r.Version != to {
				continue
			}
			if r.Status == ReleaseFailed || r.Status == ReleasePending {
				return 0, fmt.Errorf("%w (status %s)", ErrNeverServed, r.Status)
			}
			return to, nil
		}
		return 0, ErrNoSuchRelease
	}
	for _, r := range history {
		if r.Version < current && r.Status == ReleaseRetired {
			return r.Version, nil
		}
	}
	return 0, ErrNoEarlier
}
