package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// lastDeploy is the newest journaled operation of app.
func (s *server) lastDeploy(app string) (id int64, plan string, n int) {
	s.t.Helper()
	var ds []struct {
		ID   int64  `json:"id"`
		Plan string `json:"plan"`
	}
	out := s.mustRun("deploys", "-a", app, "--json", "-n", "100")
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		s.t.Fatalf("deploys --json: %v\n%s", err, out)
	}
	if len(ds) == 0 {
		return 0, "", 0
	}
	return ds[0].ID, ds[0].Plan, len(ds)
}

// snapshot is what a dry run must not change: app's journal, releases,
// config and instances (or that it has none).
func (s *server) snapshot(app string) string {
	s.t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"apps", "--json"}, {"deploys", "-a", app, "--json", "-n", "100"}, {"releases", "-a", app, "--json"}, {"config", "-a", app, "--json"}} {
		out, errOut, code := s.run(args...)
		fmt.Fprintf(&b, "$ moorage %s: %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if out, _, code := s.run("ps", "-a", app, "--json"); code == 0 {
		var st psStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			s.t.Fatalf("ps --json: %v\n%s", err, out)
		}
		for _, in := range st.Instances {
			fmt.Fprintf(&b, "%s %s\n", in.ID, in.State)
		}
	}
	return b.String()
}

// `moorage deploy --dry-run` (and rollback, scale, config set) prints the
// plan the real command then runs and journals, word for word, and changes
// nothing: no deploy record, no release, no instance.
func TestDryRunPrintsTheJournaledPlan(t *testing.T) {
	parallel(t)
	s := startServerRT(t, "process")
	dir := s.hello(t, fastSpec...)

	// dry runs cmd, checks that it changed nothing, runs it for real and
	// returns the dry run's output, which must hold the journaled plan.
	dry := func(what string, cmd func(dry bool) (string, string, int)) string {
		t.Helper()
		before := s.snapshot("hello")
		out, errOut, code := cmd(true)
		if code != 0 {
			t.Fatalf("%s --dry-run: exit %d\n%s\n%s", what, code, out, errOut)
		}
		if !strings.Contains(out, "nothing changed") {
			t.Fatalf("%s --dry-run does not say that nothing changed:\n%s", what, out)
		}
		if after := s.snapshot("hello"); after != before {
			t.Fatalf("%s --dry-run changed something:\n%s\n→\n%s", what, before, after)
		}
		if o, e, c := cmd(false); c != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", what, c, o, e)
		}
		_, plan, _ := s.lastDeploy("hello")
		if plan == "" || !strings.Contains(out, plan) {
			t.Fatalf("%s: the dry run printed\n%s\nbut the journal of the real %s has the plan\n%s", what, out, what, plan)
		}
		return plan
	}
	deploy := func(dry bool) (string, string, int) {
		args := []string{"deploy", dir, "--runtime", "process"}
		if dry {
			args = append(args, "--dry-run")
		}
		return s.run(args...)
	}
	with := func(args ...string) func(bool) (string, string, int) {
		return func(dry bool) (string, string, int) {
			if dry {
				return s.run(append(args[:len(args):len(args)], "--dry-run")...)
			}
			return s.run(args...)
		}
	}

	// The first deploy: no app yet, and the dry run creates none.
	if out, _, code := deploy(true); code != 0 || !strings.Contains(out, "deploy hello v1 (active: none)\n") {
		t.Fatalf("first dry run: exit %d\n%s", code, out)
	}
	dry("first deploy", deploy)
	s.waitBody("/", "Hello")

	setMessage(t, dir, "second")
	plan := dry("deploy", deploy)
	if !strings.Contains(plan, "keep v1's web warm for 10m (deploy.keep_warm), unrouted: hello-web-v1-1 hello-web-v1-2") {
		t.Errorf("the second deploy's plan does not keep v1's web warm:\n%s", plan)
	}
	s.waitBody("/", "second")

	dry("scale", with("scale", "-a", "hello", "worker=2"))
	dry("config set", with("config", "set", "-a", "hello", "PLAIN=one"))
	if plan := dry("rollback", with("rollback", "-a", "hello")); !strings.HasPrefix(plan, "rollback hello v4 (active: v3)\n") {
		t.Errorf("rollback's plan:\n%s", plan)
	}

	if plan := dry("stop", with("stop", "-a", "hello")); !strings.HasPrefix(plan, "stop hello v4 (active: v4)\n  1. maintenance on") {
		t.Errorf("stop's plan:\n%s", plan)
	}
	if plan := dry("start", with("start", "-a", "hello")); !strings.Contains(plan, "maintenance off") {
		t.Errorf("start's plan:\n%s", plan)
	}
	s.waitBody("/", "second")
	before := s.snapshot("hello")
	for _, args := range [][]string{{"apps", "destroy", "hello", "--dry-run"}, {"apps", "destroy", "hello"}} {
		out, _, _ := s.run(args...)
		if !strings.Contains(out, "destroy hello nothing (active: v4)\n  1. unroute") {
			t.Errorf("%v does not print the plan:\n%s", args, out)
		}
		if after := s.snapshot("hello"); after != before {
			t.Fatalf("%v changed something:\n%s\n→\n%s", args, before, after)
		}
	}

	// A dry run is refused like the real command, and says why.
	if out, errOut, code := s.run("scale", "-a", "hello", "nope=1", "--dry-run"); code == 0 || !strings.Contains(errOut, `no service "nope"`) {
		t.Fatalf("dry run of a bad scale: exit %d\n%s\n%s", code, out, errOut)
	}
}
