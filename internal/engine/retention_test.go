package engine

import (
	"fmt"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// keep_releases counts artifacts: five config changes after a code deploy
// (six releases, two artifacts) keep the code of the deploy before.
func TestRetentionCountsArtifacts(t *testing.T) {
	// v1 code A, v2 code B, v3..v7 config-only on B (v7 active),
	// keep_releases: 2.
	var rels []*store.Release
	for v := 7; v >= 1; v-- {
		ref := "B"
		if v == 1 {
			ref = "A"
		}
		st := store.ReleaseRetired
		if v == 7 {
			st = store.ReleaseActive
		}
		rels = append(rels, &store.Release{App: "a", Version: v, Status: st,
			Artifact: runtime.Artifact{Runtime: "process", Ref: ref},
			Spec:     &spec.Spec{Deploy: spec.Deploy{KeepReleases: 2}}})
	}
	cands, kept := retention(rels, 7)
	if !kept["A"] || !kept["B"] || len(cands) != 0 {
		t.Fatalf("kept %v, prunable %v: want A and B kept, nothing prunable", kept, ids(cands))
	}
	// A third artifact pushes the oldest out.
	rels[0].Artifact.Ref = "C"
	cands, kept = retention(rels, 7)
	if kept["A"] || !kept["B"] || !kept["C"] || fmt.Sprint(ids(cands)) != "[v1]" {
		t.Fatalf("kept %v, prunable %v: want B and C kept, v1 prunable", kept, ids(cands))
	}
}

func ids(rels []*store.Release) []string {
	var out []string
	for _, r := range rels {
		out = append(out, r.ID())
	}
	return out
}
