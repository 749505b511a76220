package plan

import "fmt"

// Deploy record outcomes, as the store records them (internal/store's
// Deploy* constants: the same strings).
const (
	OutcomeSucceeded  = "succeeded"
	OutcomeFailed     = "failed"
	OutcomeRolledBack = "rolled_back"
)

// Interrupted is a deploy record a server crash left running, as recovery
// found it once the app was converged to its active release.
type Interrupted struct {
	Kind        string // the record's kind ("deploy", "recover", ...)
	Phase       string // the step that last started
	Release     int    // its target release (0: none)
	FromRelease int    // the release active when it started (0: none)
	Cutover     bool   // it passed its commit point
	Current     int    // the app's active release now
}

// InterruptedOutcome decides how recovery closes an interrupted record:
// finished (it had cut over and its release is active), rolled back (it
// had cut over, and the release before it is active again), or failed and
// undone (it had not cut over); with the reason the record keeps.
// Finished says the app's config must follow its release (the adopt step
// never ran).
func InterruptedOutcome(d Interrupted) (status, reason string, finished bool) {
	status, reason = OutcomeFailed, fmt.Sprintf("interrupted by a server restart during %s, before the cutover: undone, %s kept serving", d.Phase, releaseID(d.FromRelease))
	switch {
	case d.Cutover && d.Current == d.Release:
		status, reason = OutcomeSucceeded, fmt.Sprintf("interrupted by a server restart during %s, after the cutover: finished at restart", d.Phase)
	case d.Cutover:
		status, reason = OutcomeRolledBack, fmt.Sprintf("interrupted by a server restart during %s, while rolling back: rolled back at restart", d.Phase)
	}
	if d.FromRelease == 0 && status == OutcomeFailed {
		reason = fmt.Sprintf("interrupted by a server restart during %s, before the cutover: undone", d.Phase)
	}
	if d.Kind == "recover" {
		reason = fmt.Sprintf("interrupted by a server restart during %s: the recovery at this start took over", d.Phase)
	}
	return status, reason, status == OutcomeSucceeded
}

// releaseID is "v4" for 4, "" for none (store.ReleaseID).
func releaseID(v int) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("v%d", v)
}
