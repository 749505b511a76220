package engine

import (
	"context"

	"github.com/moorage/moorage/internal/store"
)

// ArtifactsGone reports, by version, which of rels (one app's releases)
// can no longer be rolled back to because their artifact was pruned. A
// runtime that does not answer leaves its releases out (unknown, not gone).
func (e *Engine) ArtifactsGone(ctx context.Context, rels []*store.Release) map[int]bool {
	gone := map[int]bool{}
	seen := map[string]bool{} // artifact ref → exists
	for _, r := range rels {
		if r.Status == store.ReleaseActive || r.Artifact.Ref == "" {
			continue
		}
		ok, known := seen[r.Artifact.Ref]
		if !known {
			rt, err := e.Runtime(r.Artifact.Runtime)
			if err != nil {
				continue
			}
			if ok, err = rt.ArtifactExists(ctx, r.Artifact); err != nil {
				continue
			}
			seen[r.Artifact.Ref] = ok
		}
		if !ok {
			gone[r.Version] = true
		}
	}
	return gone
}
