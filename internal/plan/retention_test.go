package plan

import (
	"fmt"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
)

// keep_releases counts artifacts: five config changes after a code deploy
// (six releases, two artifacts) keep the code of the deploy before.
func TestRetentionCountsArtifacts(t *testing.T) {
	// v1 code A, v2 code B, v3..v7 config-only on B (v7 active),
	// keep_releases: 2.
	var rels []Release
	for v := 7; v >= 1; v-- {
		ref := "B"
		if v == 1 {
			ref = "A"
		}
		st := ReleaseRetired
		if v == 7 {
			st = ReleaseActive
		}
		rels = append(rels, Release{Version: v, Status: st,
			Artifact:     runtime.Artifact{Runtime: "process", Ref: ref},
			KeepReleases: 2})
	}
	cands, kept := Window(rels, 7)
	if !kept["A"] || !kept["B"] || len(cands) != 0 {
		t.Fatalf("kept %v, prunable %v: want A and B kept, nothing prunable", kept, ids(cands))
	}
	// A third artifact pushes the oldest out.
	rels[0].Artifact.Ref = "C"
	cands, kept = Window(rels, 7)
	if kept["A"] || !kept["B"] || !kept["C"] || fmt.Sprint(ids(cands)) != "[v1]" {
		t.Fatalf("kept %v, prunable %v: want B and C kept, v1 prunable", kept, ids(cands))
	}
}

func ids(rels []Release) []string {
	var out []string
	for _, r := range rels {
		out = append(out, r.ID())
	}
	return out
}

// The prune step's list is decided at planning: the releases beyond the
// window once the target is active (the release it replaces counts as
// retired), oldest first, without the artifacts already gone; a target
// not recorded yet (a dry run) counts as active all the same.
func TestPruneListDecidedAtPlanning(t *testing.T) {
	var history []Release
	for v := 6; v >= 1; v-- {
		st := ReleaseRetired
		if v == 6 {
			st = ReleaseActive
		}
		history = append(history, Release{Version: v, Status: st, KeepReleases: 3,
			Artifact: runtime.Artifact{Runtime: "process", Ref: fmt.Sprintf("/r/v%d", v)}})
	}
	target := &Release{Version: 7, Status: ReleasePending, KeepReleases: 3}
	for _, recorded := range []bool{false, true} {
		h := history
		if recorded {
			h = append([]Release{*target}, history...)
		}
		got := ids(PruneList(&Retention{History: h, Target: target, From: 6, Gone: map[string]bool{"/r/v1": true}}))
		if fmt.Sprint(got) != "[v2 v3 v4]" {
			t.Errorf("target recorded %v: prune %v, want [v2 v3 v4] (v7, v6, v5 kept; v1 gone already)", recorded, got)
		}
	}
	// A config-only release shares its artifact: it costs nothing.
	cfg := &Release{Version: 7, Status: ReleasePending, KeepReleases: 3, Artifact: history[0].Artifact}
	if got := ids(PruneList(&Retention{History: history, Target: cfg, From: 6})); fmt.Sprint(got) != "[v1 v2 v3]" {
		t.Errorf("config release: prune %v, want [v1 v2 v3]", got)
	}
}
