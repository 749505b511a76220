package plan

import (
	"fmt"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Release statuses, as the store records them.
const (
	ReleasePending = "pending"
	ReleaseActive  = "active"
	ReleaseRetired = "retired"
	ReleaseFailed  = "failed"
)

// Release is what the retention window knows of one of the app's
// releases.
type Release struct {
	Version  int
	Status   string // Release*
	Artifact runtime.Artifact
	// KeepReleases is deploy.keep_releases of its spec (0: not set).
	KeepReleases int
}

// ID is the release's name, "v4".
func (r Release) ID() string { return fmt.Sprintf("v%d", r.Version) }

// RetentionOf is what the retention window knows of a recorded release.
func RetentionOf(r *store.Release) Release {
	w := Release{Version: r.Version, Status: r.Status, Artifact: r.Artifact}
	if r.Spec != nil {
		w.KeepReleases = r.Spec.Deploy.KeepReleases
	}
	return w
}

// RetentionOfAll is RetentionOf of each of rels, in their order.
func RetentionOfAll(rels []*store.Release) []Release {
	out := make([]Release, len(rels))
	for i, r := range rels {
		out[i] = RetentionOf(r)
	}
	return out
}

// Window decides which of app's releases (newest first) are beyond the
// retention window: deploy.keep_releases of the active release's spec
// (current), counted in artifacts, not releases. The artifacts of the
// active and pending releases are kept, then those of the newest retired
// releases until keep_releases distinct artifacts are kept; a retired
// release whose artifact is already kept (a config-only release, a
// rollback) costs nothing. It returns the releases whose artifact may go
// (newest first) and the set of kept artifact refs.
func Window(rels []Release, current int) (candidates []Release, kept map[string]bool) {
	keep := spec.DefaultKeepReleases
	for _, r := range rels {
		if r.Version == current && r.KeepReleases > 0 {
			keep = r.KeepReleases
		}
	}
	kept = map[string]bool{}
	for _, r := range rels {
		if r.Version == current || r.Status == ReleasePending {
			kept[r.Artifact.Ref] = true
		}
	}
	served := 1              // the active release's artifact
	for _, r := range rels { // newest first
		switch {
		case r.Version == current || r.Status == ReleasePending:
		case r.Status == ReleaseRetired && kept[r.Artifact.Ref]:
			// shares a kept artifact: costs nothing
		case r.Status == ReleaseRetired && served < keep:
			served++
			kept[r.Artifact.Ref] = true
		default:
			if !kept[r.Artifact.Ref] {
				candidates = append(candidates, r)
			}
		}
	}
	return candidates, kept
}

// Retention is what a finishing plan decides its prune from: the app's
// releases (newest first), the release the operation makes active, the
// one active before it, and the artifacts found gone already.
type Retention struct {
	History []Release
	Target  *Release
	From    int
	Gone    map[string]bool // artifact refs no runtime has any more
}

// PruneList is the releases whose artifacts go once r.Target is active:
// those beyond the window as it will be then, one per artifact, oldest
// first, without those already gone.
func PruneList(r *Retention) []Release {
	if r == nil || r.Target == nil {
		return nil
	}
	// The history once the target is active: the target active (added when
	// it is not recorded yet: a dry run), the release it replaces retired.
	after := make([]Release, 0, len(r.History)+1)
	seen := false
	for _, rel := range r.History {
		c := rel
		switch {
		case c.Version == r.Target.Version:
			c, seen = *r.Target, true
			c.Status = ReleaseActive
		case c.Version == r.From && c.Status == ReleaseActive:
			c.Status = ReleaseRetired
		}
		after = append(after, c)
	}
	if !seen {
		t := *r.Target
		t.Status = ReleaseActive
		after = append([]Release{t}, after...)
	}
	return Prunable(after, r.Target.Version, r.Gone)
}

// Prunable is the releases whose artifacts may go while current is the
// active release (0: none is): those beyond the window (Window), one per
// artifact, oldest first, without those whose artifact is gone already.
// A prune (`moorage prune`) removes them; a finishing plan's prune step
// lists them as they will be once its target is active (PruneList).
func Prunable(history []Release, current int, gone map[string]bool) []Release {
	candidates, kept := Window(history, current)
	var out []Release
	done := map[string]bool{}
	for i := len(candidates) - 1; i >= 0; i-- { // oldest first
		c := candidates[i]
		ref := c.Artifact.Ref
		if ref == "" || kept[ref] || done[ref] || gone[ref] {
			continue
		}
		done[ref] = true
		out = append(out, c)
	}
	return out
}
