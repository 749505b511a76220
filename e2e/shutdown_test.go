package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM during a deploy (in a slow release task): the server stops within
// seconds instead of waiting for the deploy; the proxy answers every request
// until its listener closes and finishes the one in flight; the deploy's
// client is told. After a restart the old release serves, the interrupted
// deploy is closed as failed, nothing of it is left, and the next deploy
// succeeds.
func TestSIGTERMDuringDeploy(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	setMessage(t, app, "before")
	s.deploy(app, 0)
	s.waitBody("/", "message=before")

	editSpec(t, app, "release:", "env:\n  HELLO_MIGRATE_SLEEP: 10m\nrelease:")
	setMessage(t, app, "interrupted")
	deployed := make(chan string, 1)
	go func() {
		out, errOut, code := s.run("deploy", app)
		deployed <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	waitMigrating(t, s, "v2")

	// A request in flight when the server is told to stop...
	slow := make(chan string, 1)
	go func() {
		code, body, err := s.get("/slow?ms=3000")
		slow <- fmt.Sprintf("%d %s %v", code, strings.TrimSpace(body), err)
	}()
	waitFor(t, 30*time.Second, "the slow request to reach an instance", func() error {
		_, body, err := s.get("/inflight")
		if err != nil {
			return err
		}
		if strings.TrimSpace(body) == "0" {
			return errors.New("nothing in flight on this instance")
		}
		return nil
	})
	// ...and continuous load.
	ld := startLoader(s.http, "/", 2)
	waitFor(t, 30*time.Second, "some load", func() error {
		if ld.count() < 20 {
			return errors.New("not yet")
		}
		return nil
	})

	s.cmd.Process.Signal(syscall.SIGTERM)
	// The deploy's release task has 10 minutes to go, the engine used to
	// wait for it for 60s: "within seconds" with room for a loaded machine.
	s.waitExit(30 * time.Second)
	results := ld.stop()

	if got := <-slow; !strings.HasPrefix(got, "200 slept ms=3000 release=v1") {
		t.Errorf("the request in flight at SIGTERM: %s, want 200 from v1", got)
	}
	ok, refused := 0, 0
	for _, r := range results {
		switch {
		case r.err == nil && r.status == 200:
			ok++
		case errors.Is(r.err, syscall.ECONNREFUSED):
			refused++ // after the listener closed
		default:
			t.Errorf("a request failed before the listener closed: %s: status %d err %v body %q",
				r.start.Format("15:04:05.000"), r.status, r.err, strings.TrimSpace(r.body))
		}
	}
	t.Logf("%d requests answered, %d refused once the listener had closed", ok, refused)

	out := <-deployed
	if !strings.HasPrefix(out, "exit 1") || !strings.Contains(out, "the server is stopping") {
		t.Errorf("the deploy's client was not told the server stopped:\n%s", out)
	}

	s.start()
	s.waitBody("/", "message=before")
	checkConsistent(t, s, "hello")
	d := latestDeploy(t, s)
	if d.Status != "failed" || d.Release != "v2" {
		t.Errorf("the interrupted deploy is %s (release %s), want failed (v2)", d.Status, d.Release)
	}

	editSpec(t, app, "  HELLO_MIGRATE_SLEEP: 10m\n", "")
	setMessage(t, app, "after")
	s.deploy(app, 0)
	s.waitBody("/", "message=after")
	checkConsistent(t, s, "hello")
}

// SIGKILL during a release task leaves the task running, orphaned (it is
// a direct child of the server); the next start kills it before anything
// else, and undoes the deploy.
func TestSIGKILLDuringReleaseTask(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	setMessage(t, app, "before")
	s.deploy(app, 0)
	s.waitBody("/", "message=before")

	editSpec(t, app, "release:", "env:\n  HELLO_MIGRATE_SLEEP: 10m\nrelease:")
	setMessage(t, app, "killed")
	go s.run("deploy", app)
	waitMigrating(t, s, "v2")
	pids := migratePIDs(s.dataDir)
	if len(pids) != 1 {
		t.Fatalf("migrate processes: %v, want one", pids)
	}

	s.kill()
	if !processAlive(pids[0]) {
		t.Fatalf("the release task (pid %d) died with the server: nothing left for recovery to test", pids[0])
	}
	s.start()
	waitFor(t, 30*time.Second, "the orphaned release task to be killed", func() error {
		if processAlive(pids[0]) {
			return fmt.Errorf("pid %d still alive", pids[0])
		}
		return nil
	})
	s.waitBody("/", "message=before")
	checkConsistent(t, s, "hello")
	if d := latestDeploy(t, s); d.Status != "failed" {
		t.Errorf("the interrupted deploy is %s, want failed", d.Status)
	}

	editSpec(t, app, "  HELLO_MIGRATE_SLEEP: 10m\n", "")
	setMessage(t, app, "after")
	s.deploy(app, 0)
	s.waitBody("/", "message=after")
}

// SIGKILL during build.command leaves the build running, orphaned, and a
// release directory no release records; the next start kills the build and
// removes the directory (and keeps every recorded one).
func TestSIGKILLDuringBuildRemovesItsDirectory(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")

	editSpec(t, app, "command: env CGO_ENABLED=0 go build -o hello .", "command: sh -c 'touch building && sleep 600'")
	go s.run("deploy", app)
	building := filepath.Join(s.dataDir, "releases", "hello", "v2", "building")
	waitFor(t, 60*time.Second, "the build of v2 to run", func() error {
		_, err := os.Stat(building)
		return err
	})
	s.kill()
	dir := filepath.Join(s.dataDir, "releases", "hello", "v2")
	if len(processesUnder(dir)) == 0 {
		t.Fatalf("the build died with the server: nothing left for recovery to test")
	}
	s.start()
	if got := releaseDirs(t, s, "hello"); strings.Join(got, ",") != "v1" {
		t.Fatalf("release directories after restart: %v, want only v1", got)
	}
	if left := processesUnder(dir); len(left) > 0 {
		t.Fatalf("the orphaned build still runs: %v", left)
	}
	s.waitBody("/", "release=v1")
	checkConsistent(t, s, "hello")
}

// waitMigrating waits until rel's release task holds hello's migrate lock.
func waitMigrating(t *testing.T, s *server, rel string) {
	t.Helper()
	waitFor(t, 120*time.Second, "the release task of "+rel+" to run", func() error {
		if !strings.Contains(volumeFile(s, "hello", "migrate.log"), "start "+rel+" ") {
			return errors.New("not started")
		}
		return nil
	})
}

// migratePIDs finds the `hello migrate` processes under dataDir.
func migratePIDs(dataDir string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if string(cmdline) == "./hello\x00migrate\x00" && strings.HasPrefix(cwd, dataDir) {
			out = append(out, pid)
		}
	}
	return out
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

type deployRecord struct {
	ID      int64  `json:"id"`
	Release string `json:"release"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
}

func latestDeploy(t *testing.T, s *server) deployRecord {
	t.Helper()
	var ds []deployRecord
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil || len(ds) == 0 {
		t.Fatalf("deploys --json: %v (%d deploys)", err, len(ds))
	}
	return ds[0]
}

// releaseDirs lists the release directories of app (process runtime).
func releaseDirs(t *testing.T, s *server, app string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.dataDir, "releases", app))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}
