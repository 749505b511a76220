package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A stop-first web (`singleton: true` with http) deployed under continuous
// load: each deploy drains and stops the old instance, starts the new one,
// waits for its health check and routes it; the proxy holds the requests
// that arrive in between (http.hold_timeout), so none fails. A release that
// crashes once traffic reaches it is rolled back the same way: the old
// release's instance starts again and is routed.
func TestSingletonWeb(t *testing.T) { runtimes(t, testSingletonWeb) }

func testSingletonWeb(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	// A generous hold: on a loaded machine a container can take seconds
	// to start.
	app := s.hello(t, append(fastSpec, "    replicas: 2\n", "    singleton: true\n    http: {hold_timeout: 25s}\n")...)
	setMessage(t, app, "single 0")
	s.deploy(app, 0)
	s.waitBody("/", "message=single 0")

	ld := startLoader(s.http, "/", 2)
	for i := 1; i <= 2; i++ {
		msg := fmt.Sprintf("single %d", i)
		setMessage(t, app, msg)
		out := s.deploy(app, 0)
		prev, next := fmt.Sprintf("hello-web-v%d-1", i), fmt.Sprintf("hello-web-v%d-1", i+1)
		for _, want := range []string{"draining " + prev, "stopped " + prev, "routing to " + next} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy %d output lacks %q:\n%s", i, want, out)
			}
		}
		// The deploy routed the new instance before it returned.
		if code, body, err := s.get("/"); err != nil || code != 200 || !strings.Contains(body, "message="+msg) {
			t.Fatalf("after deploy %d: %d %q %v", i, code, body, err)
		}
		n := ld.count()
		waitFor(t, 30*time.Second, "20 more requests through the new release", func() error {
			if c := ld.count(); c < n+20 {
				return fmt.Errorf("%d so far", c-n)
			}
			return nil
		})
	}

	results := ld.stop()
	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed; first: %s", len(f), len(results), strings.Join(f[:min(len(f), 5)], "\n"))
	}
	seen := map[string]bool{}
	for _, r := range results {
		for _, m := range []string{"single 0", "single 1", "single 2"} {
			if strings.Contains(r.body, "message="+m+" ") {
				seen[m] = true
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("the load saw only %v", seen)
	}
	t.Logf("2 deploys, %d requests, none failed", len(results))

	// v4 crashes after its third answer: the monitor rolls back to v3,
	// whose web instance starts again while the proxy holds the requests.
	editSpec(t, app, "monitor: 1s", "monitor: 20s", "release:", "env:\n  HELLO_CRASH_AFTER_REQUESTS: \"3\"\nrelease:")
	setMessage(t, app, "crashy")
	ld = startLoader(s.http, "/", 2)
	out := s.deploy(app, 1)
	if !strings.Contains(out, "rolled back") {
		t.Errorf("deploy output lacks \"rolled back\":\n%s", out)
	}
	s.waitBody("/", "message=single 2")
	results = ld.stop()
	// The rollback of a stop-first web is a cold start of the old release
	// within hold_timeout; a container start on a loaded machine may take
	// longer, so only the process runtime is held to no failure.
	if f := failures(results); len(f) > 0 {
		if rt == "process" {
			t.Fatalf("%d of %d requests failed during the rollback; first: %s", len(f), len(results), f[0])
		}
		t.Logf("%d of %d requests failed during the rollback (a slow container start); first: %s", len(f), len(results), f[0])
	}

	// One web instance runs: v3's, routed.
	st := s.ps("hello")
	var webs []string
	for _, in := range st.Instances {
		if in.Service == "web" {
			webs = append(webs, in.ID)
			if in.Release != st.Active || !in.Routed || in.State != "running" {
				t.Errorf("web instance %s: release %s (active %s), routed %v, %s", in.ID, in.Release, st.Active, in.Routed, in.State)
			}
		}
	}
	if len(webs) != 1 {
		t.Fatalf("web instances %v, want exactly one", webs)
	}
}

// A service's http.drain_timeout overrides deploy.drain_timeout: the drain
// of the old web instance, with a slow request in flight, ends after 1s,
// not 5 minutes.
func TestServiceDrainTimeout(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, append(fastSpec,
		"    replicas: 2\n", "    replicas: 1\n    http: {drain_timeout: 1s}\n    stop_timeout: 1s\n",
		// keep_warm 0: v1's web is drained and stopped at the end of the
		// deploy (else it stays warm, and its requests finish on their own).
		"deploy:\n", "deploy:\n  drain_timeout: 5m\n  keep_warm: 0s\n")...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")

	// A slow request to v1, in flight through the deploy. (Once v1 stops,
	// the proxy retries it on v2, an idempotent GET: 20s keeps that, and
	// the server's stop at the end of the test, short.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.http+"/slow?ms=20000", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	// The only web instance counts the slow request besides this one.
	waitFor(t, 30*time.Second, "the slow request to reach v1", func() error {
		_, body, err := s.get("/inflight")
		if err != nil {
			return err
		}
		if strings.TrimSpace(body) != "1" {
			return fmt.Errorf("in flight: %s", body)
		}
		return nil
	})
	out := s.deploy(app, 0, "-v")
	for _, want := range []string{"drain (up to 1s) and stop hello-web-v1-1", "drain timeout (1s): 1 requests still in flight are cut"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
}

// Two apps claiming the same host, deployed at the same moment: exactly
// one gets it; the other fails before it changes anything, with an error
// that names the app holding the host and says how to fix it.
func TestHostClaimedByTwoApps(t *testing.T) {
	parallel(t)
	s := startServer(t)
	apps := map[string]string{}
	for _, name := range []string{"alpha", "beta"} {
		dir := helloApp(t, append(fastSpec, "app: hello", "app: "+name,
			"    replicas: 2\n", "    replicas: 2\n    http: {hosts: [shared.test]}\n")...)
		setMessage(t, dir, "i am "+name)
		apps[name] = dir
	}
	type outcome struct {
		out  string
		code int
	}
	res := map[string]outcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, dir := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := s.run("deploy", dir)
			mu.Lock()
			res[name] = outcome{out + errOut, code}
			mu.Unlock()
		}()
	}
	wg.Wait()
	var winner, loser string
	switch {
	case res["alpha"].code == 0 && res["beta"].code != 0:
		winner, loser = "alpha", "beta"
	case res["beta"].code == 0 && res["alpha"].code != 0:
		winner, loser = "beta", "alpha"
	default:
		t.Fatalf("want exactly one deploy to succeed:\nalpha (exit %d):\n%s\nbeta (exit %d):\n%s", res["alpha"].code, res["alpha"].out, res["beta"].code, res["beta"].out)
	}
	lost := res[loser].out
	t.Logf("%s won; %s failed:\n%s", winner, loser, lost)
	for _, want := range []string{`host "shared.test"`, fmt.Sprintf("app %q", winner), "a host belongs to one app", "http.hosts of " + loser} {
		if !strings.Contains(lost, want) {
			t.Errorf("the failed deploy's error lacks %q:\n%s", want, lost)
		}
	}

	// The host serves the winner.
	req, _ := http.NewRequest("GET", "http://"+s.http+"/", nil)
	req.Host = "shared.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "i am "+winner) {
		t.Fatalf("shared.test answers %d %q, want %s", resp.StatusCode, body, winner)
	}
	// Nothing of the loser was applied: no app, no release, no instance.
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("apps", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != winner {
		t.Fatalf("apps %+v, want only %s", list, winner)
	}
	if left := processesOfApp(s.dataDir, loser); len(left) > 0 {
		t.Fatalf("processes of %s: %v", loser, left)
	}
	// Deploying the loser again fails the same way, at once.
	out, errOut, code := s.run("deploy", apps[loser])
	if code == 0 || !strings.Contains(out+errOut, fmt.Sprintf("app %q", winner)) {
		t.Fatalf("second deploy of %s: exit %d\n%s%s", loser, code, out, errOut)
	}
}

// processesOfApp lists the processes of app's instances of the server with
// dataDir (by their environment).
func processesOfApp(dataDir, app string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(append([]byte{0}, env...), []byte("\x00MOORAGE_APP="+app+"\x00")) && bytes.Contains(env, []byte(dataDir)) {
			out = append(out, e.Name())
		}
	}
	return out
}
