package apiserver

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/preflight"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
	"github.com/moorage/moorage/internal/testutil/wiretest"
)

var sameJSON = wiretest.SameJSON

func TestWireJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	l := runtime.LogLine{Time: at, Instance: "web-v1-1", Stream: "stderr", Text: "boom"}
	sameJSON(t, l, logLineOf(l))
	c := certs.Info{App: "shop", Mode: "auto", Names: []string{"shop.example"}, Status: "failed", Issuer: "LE", Serial: "0a",
		NotBefore: at, NotAfter: at.Add(time.Hour), LastRenewal: at.Add(time.Minute), LastError: "rate limited",
		LastErrorAt: at.Add(2 * time.Minute), NextAttempt: at.Add(3 * time.Minute), Managed: true}
	sameJSON(t, c, certInfoOf(c))
	commit := store.Commit{SHA: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Author: "Alice <a@example.com>",
		Message: "Add notes", Describe: "v1.2-3-g0123456-dirty"}
	sameJSON(t, commit, releaseOf(&store.Release{App: "shop", Version: 3, Commit: &commit}).Commit)
	rep := preflight.Report{App: "shop", Runtime: "docker", Plan: "build v4", PlanNote: "no plan",
		Results: []preflight.Result{{Name: "checks[0]", Status: preflight.Warn, Message: "slow", Fix: "speed it up", Output: "ok\n", Seconds: 1.5}}}
	sameJSON(t, rep, checkReportOf(&rep))
	sameJSON(t, rep.Results[0], checkReportOf(&rep).Results[0])
	if a, b := bothJSON(t, preflight.Report{}, checkReportOf(&preflight.Report{})); a != b {
		t.Errorf("an empty report's JSON changed:\n was %s\n now %s", a, b)
	}
	if rel := releaseOf(&store.Release{App: "shop", Version: 3}); rel.Commit != nil {
		t.Errorf("a release without a commit has %+v", rel.Commit)
	}
}

// bothJSON returns the JSON of a and of b.
func bothJSON(t *testing.T, a, b any) (string, string) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja), string(jb)
}
