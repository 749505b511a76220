package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A release that crashes during the monitor window is rolled back
// automatically: the old web instances, kept warm, take the traffic back at
// once, no request fails, and the deploy is recorded as rolled back.
func TestMonitorRollsBack(t *testing.T) { runtimes(t, testMonitorRollsBack) }

func testMonitorRollsBack(t *testing.T, rt string) {
	// v2 passes its health gate, then crashes once traffic reaches it,
	// which is after the cutover, however long starting took.
	s, before, out, _ := deployBadRelease(t, rt, "HELLO_CRASH_AFTER_REQUESTS", "crashy",
		"monitor: 5s", "monitor: 8s", "    command: ./hello worker\n", "    command: ./hello worker\n    min_ready: 1s\n")
	// The instance's port closes before its runtime reports the exit; the
	// monitor waits a moment for that report, but on a loaded machine the
	// health check's failure may still be what it names.
	if !strings.Contains(out, "crashed during the monitor window") && !strings.Contains(out, "failed its health check during the monitor window") {
		t.Errorf("deploy output names neither the crash nor the failed health check:\n%s", out)
	}
	s.waitBody("/", "stable")
	after := s.ps("hello")
	if after.Active != "v1" {
		t.Fatalf("active %s after the rollback, want v1", after.Active)
	}
	// v1's web instances were never stopped (a warm swap back).
	webs := map[string]int{}
	for _, in := range before.Instances {
		if in.Service == "web" {
			webs[in.ID] = in.PID
		}
	}
	for _, in := range after.Instances {
		if in.Service == "web" && webs[in.ID] != in.PID {
			t.Fatalf("web instance %s was restarted by the rollback", in.ID)
		}
		if in.Release != "v1" && in.Kind == "service" {
			t.Fatalf("%s of %s still runs after the rollback", in.ID, in.Release)
		}
	}
	checkRolledBack(t, s)
	// v2 crashes as soon as traffic reaches it, after the cutover: the
	// deploy may roll back before it swapped the scheduler (one start).
	checkSingletonStarts(t, s, "hello", 1)
}

// TestMonitorRollsBackOnFailedCheck: a release that passes its health gate
// and then fails its health check once traffic reaches it, without
// crashing, is rolled back in the monitor window with its config, and no
// request fails. On Kubernetes it is TestKubernetes/MonitorRollsBackOnFailedCheck.
func TestMonitorRollsBackOnFailedCheck(t *testing.T) { runtimes(t, testMonitorRollsBackOnFailedCheck) }

func testMonitorRollsBackOnFailedCheck(t *testing.T, rt string) {
	// v2's web turns unhealthy at its third GET /, after the cutover
	// however long starting took, and keeps answering GET / with 200.
	s, _, out, _ := deployBadRelease(t, rt, "HELLO_UNHEALTHY_AFTER_REQUESTS", "sick",
		"monitor: 5s", "monitor: 20s", "    command: ./hello worker\n", "    command: ./hello worker\n    min_ready: 1s\n")
	if !strings.Contains(out, "failed its health check during the monitor window") || strings.Contains(out, "crashed during the monitor window") {
		t.Errorf("deploy output does not say that v2 failed its health check in the monitor window, or blames a crash, and nothing crashed:\n%s", out)
	}
	s.waitBody("/", "stable")
	after := s.ps("hello")
	if after.Active != "v1" {
		t.Fatalf("active %s after the rollback, want v1", after.Active)
	}
	for _, in := range after.Instances {
		if in.Release != "v1" && in.Kind == "service" {
			t.Fatalf("%s of %s still runs after the rollback", in.ID, in.Release)
		}
	}
	checkRolledBack(t, s)
	// v1's config came back with it: its instances have no
	// HELLO_UNHEALTHY_AFTER_REQUESTS.
	if code, body, _ := s.get("/env/HELLO_UNHEALTHY_AFTER_REQUESTS"); code != 404 {
		t.Fatalf("GET /env/HELLO_UNHEALTHY_AFTER_REQUESTS after the rollback: %d %q, want 404", code, body)
	}
}

// deployBadRelease starts a server of runtime rt and deploys the example
// with the spec edits given (old → new, as hello takes them) and the
// message "stable"; then a v2 whose env sets variable to "3" and whose
// message is message, under a load of GETs. It checks that the deploy
// failed and says it rolled back, and that no request failed, and returns
// the server, the status before v2, the deploy's output and the requests.
func deployBadRelease(t *testing.T, rt, variable, message string, edits ...string) (*server, psStatus, string, []result) {
	t.Helper()
	s := startServerRT(t, rt)
	app := s.hello(t, edits...)
	setMessage(t, app, "stable")
	s.deploy(app, 0)
	s.waitBody("/", "stable")
	before := s.ps("hello")

	editSpec(t, app, "release:", "env:\n  "+variable+": \"3\"\nrelease:")
	setMessage(t, app, message)
	ld := startLoader(s.http, "/", 2)
	out := s.deploy(app, 1)
	results := ld.stop()
	if !strings.Contains(out, "rolled back") {
		t.Errorf("deploy output lacks \"rolled back\":\n%s", out)
	}
	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed; first: %s\n%s", len(f), len(results), f[0], out)
	}
	return s, before, out, results
}

// checkRolledBack checks that the app's last deploy is recorded as rolled
// back.
func checkRolledBack(t *testing.T, s *server) {
	t.Helper()
	var ds []struct {
		Status string `json:"status"`
	}
	json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds)
	if len(ds) == 0 || ds[0].Status != "rolled_back" {
		t.Fatalf("deploys %+v, want the last one rolled_back", ds)
	}
}

// The new release crashes right after its cutover while a slow step after
// it still runs: stopping the old worker, which ignores its stop signal
// here and is killed only after its 20 s stop_timeout. Traffic goes back
// to the previous release's warm web instances as soon as the crash is
// reported, not once that step is over (a slow container start on a
// loaded Docker Engine did the same in a full run: the proxy's 10 s hold
// ran out and requests failed). The process runtime is enough: the
// fallback is the engine's, the same on every runtime.
func TestMonitorCrashSendsTrafficBackAtOnce(t *testing.T) {
	parallel(t)
	// SIGWINCH: ignored by default, so every stop of a worker takes its
	// whole stop_timeout.
	s, _, out, results := deployBadRelease(t, "process", "HELLO_CRASH_AFTER_REQUESTS", "crashy", "monitor: 5s", "monitor: 30s",
		"    command: ./hello worker\n", "    command: ./hello worker\n    stop_signal: SIGWINCH\n    stop_timeout: 20s\n")
	if !strings.Contains(out, "traffic is back on the previous release's 2 warm web instances") {
		t.Errorf("deploy output does not say that traffic went back at once:\n%s", out)
	}
	// From the first answer of v2 to the first of v1 again: the crash
	// comes after v2's third answer, and the old worker's stop alone takes
	// 20 s.
	var first, back time.Time
	for _, r := range results {
		switch {
		case first.IsZero() && strings.Contains(r.body, "crashy"):
			first = r.end
		case !first.IsZero() && back.IsZero() && r.start.After(first) && strings.Contains(r.body, "stable"):
			back = r.end
		}
	}
	if first.IsZero() || back.IsZero() {
		t.Fatalf("v2 never answered, or v1 never again (first %v, back %v):\n%s", first, back, out)
	}
	if gap := back.Sub(first); gap > 10*time.Second {
		t.Fatalf("v1 answered again %s after v2's first answer, want well under the old worker's 20 s stop:\n%s", gap.Round(time.Millisecond), out)
	} else {
		t.Logf("v1 answered again %s after v2's first answer", gap.Round(time.Millisecond))
	}
	s.waitBody("/", "stable")
	if st := s.ps("hello"); st.Active != "v1" {
		t.Fatalf("active %s after the rollback, want v1", st.Active)
	}
	checkSingletonStarts(t, s, "hello", 1)
}

// A deploy goes on to its end on the server when the client goes away.
func TestClientDisconnectDeployContinues(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	s.deploy(app, 0)
	setMessage(t, app, "after the client left")
	cmd := exec.Command(binary, "deploy", app, "--json")
	cmd.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the new instances are starting, then kill the client.
	buf := make([]byte, 64<<10)
	var seen strings.Builder
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(seen.String(), `"step":"start"`) && time.Now().Before(deadline) {
		n, err := stdout.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !strings.Contains(seen.String(), `"step":"start"`) {
		t.Fatalf("never saw the start step:\n%s", seen.String())
	}
	waitFor(t, 60*time.Second, "the deploy to finish without its client", func() error {
		var ds []struct {
			Status string `json:"status"`
		}
		json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds)
		if len(ds) < 2 || ds[0].Status != "succeeded" {
			return fmt.Errorf("deploys: %+v", ds)
		}
		return nil
	})
	s.waitBody("/", "after the client left")
}

// `moorage init` writes a starter spec that parses, and refuses to
// overwrite one.
func TestInit(t *testing.T) {
	parallel(t)
	dir := filepath.Join(t.TempDir(), "My_App")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(binary, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	out, code := run("init")
	if code != 0 || !strings.Contains(out, `app "my-app"`) {
		t.Fatalf("init: %d %s", code, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "moorage.yaml"))
	if !strings.Contains(string(b), "command: go build -o server .") {
		t.Fatalf("spec:\n%s", b)
	}
	if out, code := run("init"); code == 0 || !strings.Contains(out, "exists") {
		t.Fatalf("second init: %d %s", code, out)
	}
}
