package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An app that answers 400 to a Host it does not serve (Django's
// ALLOWED_HOSTS) passes every health probe: the deploy gate's, the proxy's
// after the cutover, a rollback's, and it is rolled back automatically when
// it crashes. Every probe sends the route's host, as a browser would. The
// worker's command check refers to a variable, which the runtime expands
// from the instance's environment (literally "$HELLO_ALLOWED_HOSTS" would
// fail it). On kubernetes the same checks are the pods' readiness and
// startup probes, and the kubelet's must pass too (TestKubernetes runs
// this as AllowedHostsApp).
func TestAllowedHostsApp(t *testing.T) { runtimes(t, testAllowedHostsApp) }

func testAllowedHostsApp(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, "    command: ./hello worker\n", "    command: ./hello worker\n    health: {command: [test, \"$HELLO_ALLOWED_HOSTS\", \"=\", example.com], interval: 1s}\n",
		"    health: {path: /healthz, interval: 1s}\n", "    health: {path: /healthz, interval: 1s}\n    http: {hosts: [example.com]}\n",
		"release:", "env:\n  HELLO_ALLOWED_HOSTS: example.com\nrelease:")
	get := func() (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/", nil)
		req.Host = "example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	waitBody := func(want string) {
		t.Helper()
		waitFor(t, 60*time.Second, "GET example.com/ to contain "+want, func() error {
			code, body, err := get()
			if err != nil || code != 200 || !strings.Contains(body, want) {
				return fmt.Errorf("status %d body %q err %v", code, body, err)
			}
			return nil
		})
	}
	healthy := func(release string) {
		t.Helper()
		webs := 0
		for _, in := range s.ps("hello").Instances {
			if in.Service == "web" && in.Release == release {
				webs++
				if in.Health != "healthy" {
					t.Fatalf("%s: proxy health %q (%s), want healthy", in.ID, in.Health, in.LastErr)
				}
			}
		}
		if webs == 0 {
			t.Fatalf("no web instance of %s in ps", release)
		}
	}

	// The gate probes with Host example.com; a probe of 127.0.0.1:PORT would
	// get 400 and the deploy would fail.
	setMessage(t, app, "one")
	s.deploy(app, 0)
	waitBody("message=one")
	// The monitor window (5s) watches the proxy's checks (every 1s) after
	// the cutover: the deploy succeeds only if they pass.
	setMessage(t, app, "two")
	if out := s.deploy(app, 0); !strings.Contains(out, "monitor") {
		t.Fatalf("deploy output has no monitor window:\n%s", out)
	}
	waitBody("message=two")
	healthy("v2")
	if rt == "kubernetes" {
		kubeProbesPass(t, s, "hello", map[string]string{"web": "example.com", "worker": ""})
	}

	// A rollback starts v1's instances again and gates them.
	s.mustRun("rollback", "-a", "hello")
	waitBody("message=one")

	// A release that crashes once traffic reaches it is rolled back.
	editSpec(t, app, "  HELLO_ALLOWED_HOSTS: example.com\n", "  HELLO_ALLOWED_HOSTS: example.com\n  HELLO_CRASH_AFTER_REQUESTS: \"3\"\n")
	setMessage(t, app, "crashy")
	ctx, stop := context.WithCancel(context.Background())
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			get()
			sent.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	out := s.deploy(app, 1)
	stop()
	<-done
	if !strings.Contains(out, "rolled back") {
		t.Fatalf("crashing release: deploy output lacks \"rolled back\" (%d requests sent):\n%s", sent.Load(), out)
	}
	waitBody("message=one")
}
