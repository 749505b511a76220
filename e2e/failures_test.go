package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// The failures of docs/deploy-semantics.md's table that happen before any
// instance of the new release starts: each is reported with what failed,
// the new release is marked failed, and the active release is never
// touched. Then the next deploy succeeds.

// A failing build.command.
func TestFailingBuildCommand(t *testing.T) { runtimes(t, testFailingBuildCommand) }

func testFailingBuildCommand(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "built")
	s.deploy(app, 0)
	before := s.ps("hello")

	editSpec(t, app, "go build -o hello .", "go build -o hello ./no-such-package")
	out := s.deploy(app, 1)
	for _, want := range []string{"no-such-package", `build command "env CGO_ENABLED=0 go build -o hello ./no-such-package"`, "v1 keeps serving"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	checkAbortedBefore(t, s, before, "v2", "build")
	if rt == "process" {
		if rels := releaseDirs(t, s, "hello"); strings.Join(rels, ",") != "v1" {
			t.Errorf("release directories after a failed build: %v, want only v1", rels)
		}
	}

	editSpec(t, app, "./no-such-package", ".")
	setMessage(t, app, "built again")
	s.deploy(app, 0)
	s.waitBody("/", "message=built again")
}

// A failing `checks:` entry.
func TestFailingCheck(t *testing.T) { runtimes(t, testFailingCheck) }

func testFailingCheck(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "checked")
	s.deploy(app, 0)
	before := s.ps("hello")

	// hello exits 2 with its usage on an unknown command.
	editSpec(t, app, "services:", "checks:\n  - ./hello no-such-check\nservices:")
	setMessage(t, app, "never checked")
	out := s.deploy(app, 1)
	for _, want := range []string{"check task 1 `./hello no-such-check` exited with status 2", "usage: hello", "v1 keeps serving"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	checkAbortedBefore(t, s, before, "v2", "check")
	// The release task ran (checks come after it), once.
	checkMigrations(t, s, "hello", 2)
	s.waitBody("/", "message=checked")

	editSpec(t, app, "./hello no-such-check", "./hello migrate")
	setMessage(t, app, "checked again")
	s.deploy(app, 0)
	s.waitBody("/", "message=checked again")
}

// A release task that does not finish within its timeout is killed.
func TestReleaseTaskTimeout(t *testing.T) { runtimes(t, testReleaseTaskTimeout) }

func testReleaseTaskTimeout(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "quick")
	s.deploy(app, 0)
	before := s.ps("hello")

	editSpec(t, app, "  - ./hello migrate", "  - {command: ./hello migrate, timeout: 2s}",
		"release:", "env:\n  HELLO_MIGRATE_SLEEP: 10m\nrelease:")
	setMessage(t, app, "too slow")
	out := s.deploy(app, 1)
	for _, want := range []string{"release task 1 `./hello migrate` did not finish within 2s", "holding the lock", "v1 keeps serving"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	checkAbortedBefore(t, s, before, "v2", "release")
	s.waitBody("/", "message=quick")

	// The killed task let go of its lock: the next deploy migrates.
	editSpec(t, app, "  HELLO_MIGRATE_SLEEP: 10m\n", "")
	setMessage(t, app, "quick again")
	s.deploy(app, 0)
	s.waitBody("/", "message=quick again")
	if c := volumeFile(s, "hello", "migrate-conflicts.log"); c != "" {
		t.Fatalf("two migrations ran at once:\n%s", c)
	}
}

// A new instance that crashes before it is ready aborts the deploy: the
// instances of the new release are stopped, the old ones never touched.
func TestCrashingInstanceAborts(t *testing.T) { runtimes(t, testCrashingInstanceAborts) }

func testCrashingInstanceAborts(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "steady")
	s.deploy(app, 0)
	before := s.ps("hello")

	// The worker is ready after 1s up (min_ready); it crashes after 300ms.
	editSpec(t, app, "    min_ready: 1s\n", "    min_ready: 1s\n    env: {HELLO_CRASH_AFTER: 300ms}\n")
	setMessage(t, app, "crashing")
	ld := startLoader(s.http, "/", 2)
	out := s.deploy(app, 1)
	results := ld.stop()
	for _, want := range []string{"hello-worker-v2-1 crashed before it became ready", "last lines of hello-worker-v2-1", "crashing on purpose", "v1 keeps serving"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed while v2 was failing; first: %s", len(f), len(results), f[0])
	}
	after := s.ps("hello")
	if after.Active != "v1" {
		t.Fatalf("active is %s, want v1", after.Active)
	}
	assertSameInstances(t, before, after)
	if rels := s.mustRun("releases", "-a", "hello"); !regexp.MustCompile(`v2\s+#\d+\s+failed`).MatchString(rels) {
		t.Fatalf("v2 not marked failed:\n%s", rels)
	}
}

// checkAbortedBefore checks that the latest deploy failed at step failed
// (its last step) and started nothing, that release rel is marked failed,
// and that the active release runs exactly as before.
func checkAbortedBefore(t *testing.T, s *server, before psStatus, rel, failed string) {
	t.Helper()
	var ds []struct {
		Status string `json:"status"`
		Steps  []struct {
			Name    string `json:"name"`
			Outcome string `json:"outcome"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
		t.Fatal(err)
	}
	if ds[0].Status != "failed" {
		t.Fatalf("latest deploy is %s, want failed", ds[0].Status)
	}
	var names []string
	for _, st := range ds[0].Steps {
		names = append(names, st.Name+"="+st.Outcome)
		if st.Name == "start" || st.Name == "cutover" || st.Name == "singleton" {
			t.Fatalf("step %s ran after %s failed: %v", st.Name, failed, ds[0].Steps)
		}
	}
	if !strings.Contains(strings.Join(names, " "), failed+"=failed") {
		t.Fatalf("steps %v: no failed %s step", names, failed)
	}
	if rels := s.mustRun("releases", "-a", "hello"); !regexp.MustCompile(rel + `\s+#\d+\s+failed`).MatchString(rels) {
		t.Fatalf("%s not marked failed:\n%s", rel, rels)
	}
	after := s.ps("hello")
	if after.Active != before.Active {
		t.Fatalf("active is %s, want %s", after.Active, before.Active)
	}
	assertSameInstances(t, before, after)
}
