package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type releaseCommit struct {
	ID     string `json:"id"`
	Cause  string `json:"cause"`
	Commit *struct {
		SHA      string `json:"sha"`
		Branch   string `json:"branch"`
		Author   string `json:"author"`
		Message  string `json:"message"`
		Describe string `json:"describe"`
	} `json:"commit"`
}

func (s *server) releaseCommits(app string) map[string]releaseCommit {
	s.t.Helper()
	var rels []releaseCommit
	if err := json.Unmarshal([]byte(s.mustRun("releases", "-a", app, "--json")), &rels); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]releaseCommit{}
	for _, r := range rels {
		out[r.ID] = r
	}
	return out
}

// `moorage deploy` from a git work tree records its commit and `git
// describe` (dirty when it has changes); `moorage releases` shows it; a
// config change's release keeps it; a tree without git records none.
func TestDeployRecordsItsCommit(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0) // v1: no git
	mustGit(t, app, nil, "init", "--quiet", "--initial-branch=main")
	mustGit(t, app, nil, "add", "-A")
	mustGit(t, app, nil, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "--quiet", "-m", "First release\n\nbody")
	mustGit(t, app, nil, "tag", "v1.0")
	sha := strings.TrimSpace(mustGit(t, app, nil, "rev-parse", "HEAD"))
	if err := os.WriteFile(filepath.Join(app, "message.txt"), []byte("uncommitted change"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.deploy(app, 0) // v2: v1.0-dirty
	s.mustRun("config", "set", "-a", "hello", "GREETING=hi")

	rels := s.releaseCommits("hello")
	if c := rels["v1"].Commit; c != nil {
		t.Errorf("v1, deployed from a tree without git, records commit %+v", c)
	}
	c := rels["v2"].Commit
	if c == nil || c.SHA != sha || c.Branch != "main" || c.Author != "Alice <alice@example.com>" || c.Message != "First release" || c.Describe != "v1.0-dirty" {
		t.Fatalf("v2's commit %+v, want %s on main by Alice, v1.0-dirty", c, sha)
	}
	if c3 := rels["v3"].Commit; c3 == nil || c3.SHA != sha || !strings.HasPrefix(rels["v3"].Cause, "config") {
		t.Fatalf("v3 (%s) keeps its artifact's commit: %+v", rels["v3"].Cause, c3)
	}
	table := s.mustRun("releases", "-a", "hello")
	if !regexp.MustCompile(`(?m)^ v2\s.*\sv1\.0-dirty$`).MatchString(table) || !regexp.MustCompile(`(?m)^ v1\s.*\s-$`).MatchString(table) {
		t.Fatalf("moorage releases does not show the commits:\n%s", table)
	}
}
