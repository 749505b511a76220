package plan

import (
	"testing"

	"github.com/moorage/moorage/internal/store"
)

// How recovery closes a record a crash left running.
func TestInterruptedOutcome(t *testing.T) {
	for got, want := range map[string]string{OutcomeSucceeded: store.DeploySucceeded, OutcomeFailed: store.DeployFailed,
		OutcomeRolledBack: store.DeployRolledBack} {
		if got != want {
			t.Errorf("outcome %q, the store's %q", got, want)
		}
	}
	if releaseID(4) != store.ReleaseID(4) || releaseID(0) != store.ReleaseID(0) {
		t.Errorf("releaseID differs from the store's")
	}
	for _, c := range []struct {
		name     string
		in       Interrupted
		status   string
		reason   string
		finished bool
	}{
		{"before the cutover", Interrupted{Kind: "deploy", Phase: "start", Release: 5, FromRelease: 4, Current: 4},
			OutcomeFailed, "interrupted by a server restart during start, before the cutover: undone, v4 kept serving", false},
		{"the first deploy, before the cutover", Interrupted{Kind: "deploy", Phase: "build", Release: 1},
			OutcomeFailed, "interrupted by a server restart during build, before the cutover: undone", false},
		{"after the cutover", Interrupted{Kind: "deploy", Phase: "singleton", Release: 5, FromRelease: 4, Cutover: true, Current: 5},
			OutcomeSucceeded, "interrupted by a server restart during singleton, after the cutover: finished at restart", true},
		{"while rolling back", Interrupted{Kind: "deploy", Phase: "revert:drain", Release: 5, FromRelease: 4, Cutover: true, Current: 4},
			OutcomeRolledBack, "interrupted by a server restart during revert:drain, while rolling back: rolled back at restart", false},
		{"a recovery", Interrupted{Kind: "recover", Phase: "recover:drain", Release: 4, FromRelease: 4, Current: 4},
			OutcomeFailed, "interrupted by a server restart during recover:drain: the recovery at this start took over", false},
	} {
		status, reason, finished := InterruptedOutcome(c.in)
		if status != c.status || reason != c.reason || finished != c.finished {
			t.Errorf("%s: got %s %q %v, want %s %q %v", c.name, status, reason, finished, c.status, c.reason, c.finished)
		}
	}
}
