package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// git runs git in dir and returns its combined output and exit code.
func gitIn(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return b.String(), code
}

func mustGit(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, code := gitIn(t, dir, env, args...)
	if code != 0 {
		t.Fatalf("git %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// git push over a real sshd to the forced command `moorage git-remote`
// prints: a commit whose test: passes is deployed, with the pipeline's
// progress shown as remote: lines; one whose test fails is refused (the
// branch not updated) with the test's output shown, and the active
// release is unchanged; another branch is kept and deploys nothing.
func TestPushDeploysAndRefuses(t *testing.T) {
	parallel(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is not installed (scripts/test-deps): %v", err)
	}
	d := startSSHD(t)
	s := startServer(t)

	out := s.mustRun("git-remote", "hello", "--branch", "main")
	var forced string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "command=") {
			forced = l
		}
	}
	if forced == "" {
		t.Fatalf("git-remote printed no authorized_keys entry:\n%s", out)
	}
	pub, err := os.ReadFile(d.path("id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	d.write("authorized_keys", forced+" "+string(pub))

	app := s.hello(t, fastSpec...)
	appendSpec(t, app, "test:\n  commands: [sh -c \"echo unit tests ran; test -f message.txt\"]\n")
	setMessage(t, app, "pushed")
	env := []string{"GIT_SSH_COMMAND=" + d.sshCommand("id", "known_hosts")}
	mustGit(t, app, env, "init", "--quiet", "--initial-branch=main")
	mustGit(t, app, env, "add", "-A")
	mustGit(t, app, env, "commit", "--quiet", "-m", "first")
	remote := "ssh://" + d.user + "@127.0.0.1:" + d.port() + "/hello"
	mustGit(t, app, env, "remote", "add", "moorage", remote)

	out = mustGit(t, app, env, "push", "moorage", "main")
	if !strings.Contains(out, "remote:") || !strings.Contains(out, "unit tests ran") {
		t.Fatalf("push output shows no pipeline progress:\n%s", out)
	}
	s.waitBody("/", "pushed")
	first := strings.TrimSpace(mustGit(t, app, nil, "rev-parse", "HEAD"))
	if c := s.releaseCommits("hello")["v1"].Commit; c == nil || c.SHA != first || c.Branch != "main" || c.Message != "first" {
		t.Fatalf("the pushed release records commit %+v, want %s on main", c, first)
	}

	// A failing test: refused, the output shown, nothing changed.
	p := filepath.Join(app, "moorage.yaml")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "test -f message.txt", "echo FAILING-TEST-OUTPUT; exit 3", 1)), 0o644)
	setMessage(t, app, "broken")
	mustGit(t, app, env, "commit", "--quiet", "-am", "broken")
	out, code := gitIn(t, app, env, "push", "moorage", "main")
	if code == 0 || !strings.Contains(out, "remote:") || !strings.Contains(out, "FAILING-TEST-OUTPUT") || !strings.Contains(out, "pre-receive hook declined") {
		t.Fatalf("failing push: exit %d\n%s", code, out)
	}
	repo := filepath.Join(s.dataDir, "git", "hello.git")
	if got := strings.TrimSpace(mustGit(t, repo, nil, "rev-parse", "main")); got != first {
		t.Fatalf("refused push updated main to %s (was %s)", got, first)
	}
	if st := s.ps("hello"); st.Active != "v1" {
		t.Fatalf("active %s after a refused push, want v1", st.Active)
	}
	s.waitBody("/", "pushed")

	// Another branch: kept, nothing deployed.
	out = mustGit(t, app, env, "push", "moorage", "HEAD:refs/heads/feature")
	if !strings.Contains(out, "feature is not hello's deploy branch (main)") {
		t.Fatalf("push of another branch:\n%s", out)
	}
	if st := s.ps("hello"); st.Active != "v1" {
		t.Fatalf("active %s after a push of another branch, want v1", st.Active)
	}

	// A push under load: no request fails while it deploys.
	b, _ = os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "echo FAILING-TEST-OUTPUT; exit 3", "test -f message.txt", 1)), 0o644)
	setMessage(t, app, "pushed under load")
	mustGit(t, app, env, "commit", "--quiet", "-am", "fixed")
	ld := startLoader(s.http, "/", 2)
	mustGit(t, app, env, "push", "moorage", "main")
	s.waitBody("/", "pushed under load")
	results := ld.stop()
	if f := failures(results); len(f) > 0 || len(results) < 50 {
		t.Fatalf("%d of %d requests failed during the push's deploy; first: %v", len(f), len(results), f)
	}
	t.Logf("push under load: %d requests, 0 failed", len(results))
}
