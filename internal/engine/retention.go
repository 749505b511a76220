package engine

import (
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// retention decides which of app's releases (newest first, as ListReleases
// returns them) are beyond the retention window: deploy.keep_releases of
// the active release's spec (current), counted in artifacts, not releases.
// The artifacts of the active and pending releases are kept, then those of
// the newest retired releases until keep_releases distinct artifacts are
// kept; a retired release whose artifact is already kept (a config-only
// release, a rollback) costs nothing. It returns the releases whose
// artifact may go (newest first) and the set of kept artifact refs. Pure:
// it neither reads the store nor asks a runtime.
func retention(rels []*store.Release, current int) (candidates []*store.Release, kept map[string]bool) {
	keep := spec.DefaultKeepReleases
	for _, r := range rels {
		if r.Version == current && r.Spec != nil && r.Spec.Deploy.KeepReleases > 0 {
			keep = r.Spec.Deploy.KeepReleases
		}
	}
	kept = map[string]bool{}
	for _, r := range rels {
		if r.Version == current || r.Status == store.ReleasePending {
			kept[r.Artifact.Ref] = true
		}
	}
	served := 1              // the active release's artifact
	for _, r := range rels { // newest first
		switch {
		case r.Version == current || r.Status == store.ReleasePending:
		case r.Status == store.ReleaseRetired && kept[r.Artifact.Ref]:
			// shares a kept artifact: costs nothing
		case r.Status == store.ReleaseRetired && served < keep:
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
