package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// keep_releases counts artifacts, not releases: config changes (which share
// their artifact) do not push older code out. `moorage releases` marks what
// can no longer be rolled back to and shows the deploy that made each
// release; `rollback --to` a pruned release says which can be.
func TestRetentionCountsArtifacts(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, append(fastSpec, "  monitor: 1s", "  monitor: 1s\n  keep_releases: 2")...)
	setMessage(t, app, "code A")
	s.deploy(app, 0) // v1: artifact A
	setMessage(t, app, "code B")
	s.deploy(app, 0) // v2: artifact B
	for i := 1; i <= 3; i++ {
		s.mustRun("config", "set", "-a", "hello", fmt.Sprintf("PLAIN=%d", i)) // v3..v5 on B
	}
	rels := s.mustRun("releases", "-a", "hello")
	if strings.Contains(rels, "pruned") {
		t.Fatalf("three config changes pruned code A (keep_releases: 2 counts artifacts):\n%s", rels)
	}
	if !regexp.MustCompile(`(?m)^ v1\s+#1\s+retired`).MatchString(rels) {
		t.Fatalf("releases does not show v1 made by deploy #1:\n%s", rels)
	}

	setMessage(t, app, "code C")
	s.deploy(app, 0) // v6: artifact C; A is now beyond the window
	rels = s.mustRun("releases", "-a", "hello")
	if !regexp.MustCompile(`(?m)^ v1\s+#1\s+retired \(pruned: no rollback\)`).MatchString(rels) ||
		regexp.MustCompile(`(?m)^ v[2-5]\s.*pruned`).MatchString(rels) {
		t.Fatalf("releases after code C: want v1 alone marked pruned:\n%s", rels)
	}
	out, errOut, code := s.run("rollback", "-a", "hello", "--to", "v1")
	if code == 0 || !strings.Contains(errOut+out, "releases to roll back to: v5, v4, v3, v2") {
		t.Fatalf("rollback --to a pruned release: exit %d\n%s%s", code, out, errOut)
	}
}
