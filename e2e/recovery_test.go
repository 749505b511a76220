package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The server killed with SIGKILL at each step of a deploy, then restarted:
// the app serves the old or the new release, the store is consistent, and
// the next deploy succeeds.
func TestSIGKILLAtEveryStep(t *testing.T) { runtimes(t, testSIGKILLAtEveryStep) }

func testSIGKILLAtEveryStep(t *testing.T, rt string) {
	points := []killPoint{
		{failpoint: "before:build"},
		{failpoint: "after:build"},
		{failpoint: "before:release"},
		{failpoint: "after:release"},
		{failpoint: "before:start"},
		{failpoint: "after:start"},
		{failpoint: "before:cutover"},
		{failpoint: "commit:cutover", committed: true},
		{failpoint: "after:cutover", committed: true},
		{failpoint: "before:stop", committed: true},
		{failpoint: "before:singleton", committed: true},
		{failpoint: "after:singleton", committed: true},
		{failpoint: "before:monitor", committed: true},
		{failpoint: "after:monitor", committed: true},
		{failpoint: "after:drain", committed: true},
		{failpoint: "after:keep-warm", committed: true}, // the previous release's web left running, unrouted
		{failpoint: "after:activate", committed: true},  // its config not adopted yet
		{failpoint: "after:prune", committed: true},
	}
	switch rt {
	case "docker":
		// Every step is covered on the process runtime; on docker and
		// swarm a few representative points keep the suite's time in check.
		points = only(points, "after:release", "after:start", "before:cutover", "commit:cutover", "before:singleton", "after:drain")
	case "swarm":
		points = only(points, "after:start", "commit:cutover", "before:singleton")
	case "kubernetes":
		// Every point passed by hand on the kubetest cluster (eighteen,
		// about 16 minutes: docs/runtimes.md). The suite takes swarm's
		// three: the lane of Kubernetes tests starts only once the
		// cluster's cold build is done, and ends the suite.
		points = only(points, "after:start", "commit:cutover", "before:singleton")
	}
	killAtEach(t, rt, points, true)
}

// The server killed in the middle of a step (a release task running, the
// first of several instances started, a drain begun, no singleton alive),
// while it undoes a deploy that failed before its cutover or rolls back one
// that crashed after it, and during the recovery at its next start: after
// the restart that completes, the app serves the old or the new release,
// the store is consistent, and a last deploy succeeds.
func TestSIGKILLMidStep(t *testing.T) { runtimes(t, testSIGKILLMidStep) }

func testSIGKILLMidStep(t *testing.T, rt string) {
	crashy := []string{"monitor: 1s", "monitor: 20s", "release:", "env:\n  HELLO_CRASH_AFTER_REQUESTS: \"3\"\nrelease:"}
	points := []killPoint{
		{failpoint: "during:release", edits: []string{"release:", "env:\n  HELLO_MIGRATE_SLEEP: 10m\nrelease:"}},
		{failpoint: "during:start"},
		{failpoint: "during:singleton", committed: true},
		{failpoint: "during:drain", committed: true},
		// The new web and worker crash at once: the start step fails and
		// the deploy is undone.
		{failpoint: "during:undo:drain", edits: []string{"release:", "env:\n  HELLO_CRASH_AFTER: 1ms\nrelease:"}},
		// The new web crashes once traffic reaches it: the deploy rolls
		// back, and the server dies while the new web drains.
		{failpoint: "during:revert:drain", edits: crashy, load: true},
		{failpoint: "after:start", recover: "during:recover:drain"},
		{failpoint: "commit:cutover", committed: true, recover: "during:recover:singleton"},
	}
	switch rt {
	case "docker":
		points = only(points, "during:release", "during:start", "commit:cutover")
	case "kubernetes":
		// The migration's Job killed with the server: a release task
		// never runs beside the next one. during:start and commit:cutover
		// passed by hand (10 s and 26 s) and are SIGKILLAtEveryStep's.
		points = only(points, "during:release")
	}
	killAtEach(t, rt, points, false)
}

// killPoint is where a deploy's server is killed.
type killPoint struct {
	failpoint string
	committed bool     // the deploy had cut over: the new release serves after the restart
	edits     []string // moorage.yaml edits (old, new pairs) for the killed deploy only
	load      bool     // send requests during the deploy (a release that crashes on traffic)
	recover   string   // a failpoint of the first restart: killed again during recovery
}

func only(points []killPoint, names ...string) []killPoint {
	var out []killPoint
	for _, p := range points {
		if slices.Contains(names, p.failpoint) {
			out = append(out, p)
		}
	}
	return out
}

// killAtEach deploys the app once, then for each point deploys it again on
// a server that dies there, restarts the server (first with the point's
// recovery failpoint, if any) and checks what serves and that the state
// is consistent. With deployEach the next deploy must then succeed;
// otherwise one deploy at the end proves it.
func killAtEach(t *testing.T, rt string, points []killPoint, deployEach bool) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "message 0")
	s.deploy(app, 0)
	s.waitBody("/", "message 0")
	current := "message 0"
	outer := s.t
	for i, p := range points {
		t.Run(strings.ReplaceAll(p.failpoint, ":", "_"), func(t *testing.T) {
			s.t = t
			defer func() { s.t = outer }()
			s.stop()
			s.start("MOORAGE_FAILPOINTS=" + p.failpoint)
			next := fmt.Sprintf("message %d", i+1)
			setMessage(t, app, next)
			editSpec(t, app, p.edits...)
			var ld *loader
			if p.load {
				ld = startLoader(s.http, "/", 2)
			}
			args := []string{"deploy", app}
			if s.runtime != "" {
				args = append(args, "--runtime", s.runtime)
			}
			out, errOut, code := s.run(args...)
			if ld != nil {
				ld.stop() // its requests fail with the server: not what is tested
			}
			if code == 0 {
				t.Fatalf("deploy survived failpoint %s:\n%s", p.failpoint, out)
			}
			// The deploy's own words when the server lives on: it failed
			// before the failpoint, and they say why.
			select {
			case <-s.exited:
			case <-time.After(2 * time.Minute):
				t.Fatalf("the deploy failed (exit %d) but the server did not die at %s within 2m; the deploy said:\n%s%s\nserver log:\n%s", code, p.failpoint, out, errOut, s.logs())
			}
			if !strings.Contains(s.logs(), "failpoint reached") {
				t.Fatalf("server died without reaching %s: %s%s\n%s", p.failpoint, out, errOut, tail(s.logs(), 40))
			}
			editSpec(t, app, reversed(p.edits)...)
			if p.recover != "" {
				s.launch("MOORAGE_FAILPOINTS=" + p.recover)
				s.waitExit(2 * time.Minute)
				if !strings.Contains(s.logs(), "failpoint reached") {
					t.Fatalf("recovery did not reach %s:\n%s", p.recover, tail(s.logs(), 40))
				}
			}
			s.start()
			want := current
			if p.committed {
				want = next
			}
			s.waitBody("/", "message="+want)
			current = want
			checkConsistent(t, s, "hello")
			if !deployEach {
				return
			}
			// The next deploy succeeds.
			after := fmt.Sprintf("message %d after", i+1)
			setMessage(t, app, after)
			s.deploy(app, 0)
			s.waitBody("/", "message="+after)
			current = after
			checkConsistent(t, s, "hello")
		})
		if t.Failed() {
			return
		}
	}
	if !deployEach {
		setMessage(t, app, "the end")
		s.deploy(app, 0)
		s.waitBody("/", "message=the end")
		checkConsistent(t, s, "hello")
	}
	checkSingleton(t, s, "hello")
}

// reversed undoes editSpec's old → new pairs.
func reversed(edits []string) []string {
	out := make([]string, 0, len(edits))
	for i := len(edits) - 2; i >= 0; i -= 2 {
		out = append(out, edits[i+1], edits[i])
	}
	return out
}

// checkConsistent: no deploy is left running, exactly the active release's
// formation runs (nothing of other releases), and no task is left behind.
func checkConsistent(t *testing.T, s *server, app string) {
	t.Helper()
	var ds []struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", app, "--json", "-n", "50")), &ds); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Status == "running" {
			t.Fatalf("deploy #%d is still running after recovery", d.ID)
		}
	}
	var st psStatus
	// A deadline, not a wait: an instance the recovery restarted may still
	// be starting on a machine loaded by the whole suite.
	waitFor(t, 2*time.Minute, "only the active release to run", func() error {
		st = s.ps(app)
		if err := checkWarm(st); err != nil {
			return err
		}
		count := map[string]int{}
		for _, in := range st.serving() { // the previous release's web may stay warm (deploy.keep_warm)
			if in.Kind == "task" {
				return fmt.Errorf("task %s left behind", in.ID)
			}
			if in.Kind != "service" {
				continue
			}
			if in.Release != st.Active {
				return fmt.Errorf("%s of %s runs beside active %s", in.ID, in.Release, st.Active)
			}
			if in.State != "running" {
				return fmt.Errorf("%s is %s", in.ID, in.State)
			}
			count[in.Service]++
		}
		if count["web"] != 2 || count["worker"] != 1 || count["scheduler"] != 1 {
			return fmt.Errorf("formation %v, want web=2 worker=1 scheduler=1", count)
		}
		// The docker runtime does not list one-off containers: ask the
		// engine directly.
		if s.runtime == "docker" {
			ids, err := docker("ps", "-aq", "--filter", "label=moorage.prefix="+s.prefix, "--filter", "label=moorage.app="+app, "--filter", "label=moorage.kind=task")
			if err != nil {
				return fmt.Errorf("docker ps: %v: %s", err, ids)
			}
			if ids != "" {
				return fmt.Errorf("task containers left behind: %s", strings.Join(strings.Fields(ids), " "))
			}
		}
		// Nor does the kubernetes runtime list its Jobs: ask the cluster.
		if s.runtime == "kubernetes" {
			if jobs := kubeJobs(s, app, "moorage.kind=task"); len(jobs) > 0 {
				return fmt.Errorf("task Jobs left behind: %s", strings.Join(jobs, " "))
			}
		}
		return nil
	})
}

// Stopping the server leaves the app running; starting it again re-adopts
// every instance without restarting it.
func TestServerRestartReadopts(t *testing.T) { runtimes(t, testServerRestartReadopts) }

func testServerRestartReadopts(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	before := s.ps("hello")
	s.stop()
	for _, in := range before.Instances {
		if in.PID == 0 || syscall.Kill(in.PID, 0) != nil {
			t.Fatalf("instance %s (pid %d) died with the server", in.ID, in.PID)
		}
	}
	s.start()
	s.waitBody("/", "release=v1")
	assertSameInstances(t, before, s.ps("hello"))
	// Logs written before the restart are still readable.
	if out := s.mustRun("logs", "-a", "hello", "-n", "50"); !strings.Contains(out, "hello-web-v1-1") {
		t.Fatalf("logs after restart:\n%s", out)
	}
}

// `moorage up` deploys the app, prints its URL, and Ctrl-C stops
// everything.
func TestUp(t *testing.T) {
	parallel(t)
	app := helloApp(t) // the example exactly as shipped
	addr := freePort(t)
	cmd, out, exited := startUp(t, app, addr)
	url := "http://" + addr + "/"
	if !strings.Contains(out.String(), "hello is up: "+url) {
		t.Fatalf("up printed another URL than %s:\n%s", url, out.String())
	}
	s := &server{t: t, http: addr}
	s.waitBody("/", "release=v1")
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("moorage up exited with %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("moorage up did not stop on Ctrl-C:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Fatalf("no clean stop:\n%s", out.String())
	}
	// Nothing of the app is left running.
	if left := processesUnder(app); len(left) > 0 {
		t.Fatalf("processes left after Ctrl-C: %v", left)
	}
}

// startUp runs `moorage up app --http addr` and waits until it prints the
// app's URL. Its output and its exit come back; when the test ends it gets
// Ctrl-C (then SIGKILL after a minute) and the app's instances are killed.
func startUp(t *testing.T, app, addr string) (*exec.Cmd, *syncBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(binary, "up", app, "--http", addr)
	cmd.Env = os.Environ()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
		killInstances(app)
	})
	waitFor(t, 120*time.Second, "moorage up to print the URL", func() error {
		select {
		case <-done:
			t.Fatalf("moorage up exited:\n%s", out.String())
		default:
		}
		if !strings.Contains(out.String(), " is up: ") {
			return fmt.Errorf("no URL yet")
		}
		return nil
	})
	return cmd, out, exited
}

// processesUnder lists processes whose working directory is under dir.
func processesUnder(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err == nil && strings.HasPrefix(cwd, dir) {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
