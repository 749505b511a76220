package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// `moorage stop` stops every service instance and the proxy shows the
// maintenance page; the app stays stopped across a server restart and
// deploys are refused; `moorage start` brings the active release back. Both
// are recorded in the history.
func TestStopStartApp(t *testing.T) {
	runtimes(t, func(t *testing.T, rt string) {
		s := startServerRT(t, rt)
		app := s.hello(t, fastSpec...)
		s.deploy(app, 0)
		s.waitBody("/", "release=v1")

		s.mustRun("stop", "hello")
		running := func() int {
			n := 0
			for _, in := range s.ps("hello").Instances {
				if in.Kind == "service" && in.State != "exited" {
					n++
				}
			}
			return n
		}
		if n := running(); n != 0 {
			t.Fatalf("after stop: %d service instances still run", n)
		}
		if code, body, _ := s.get("/"); code != 503 || !strings.Contains(body, "hello is stopped") {
			t.Fatalf("after stop: GET / = %d %q, want the maintenance page", code, body)
		}
		if out := s.deploy(app, 1); !strings.Contains(out, "the app is stopped") || !strings.Contains(out, "moorage start") {
			t.Fatalf("deploy of a stopped app:\n%s", out)
		}

		// A restarted server keeps it stopped.
		s.stop()
		s.start()
		waitFor(t, 30*time.Second, "the maintenance page after a restart", func() error {
			if code, _, _ := s.get("/"); code != 503 {
				return fmt.Errorf("status %d", code)
			}
			return nil
		})
		if n := running(); n != 0 {
			t.Fatalf("after a restart: %d service instances of a stopped app run", n)
		}

		s.mustRun("start", "hello")
		s.waitBody("/", "release=v1")
		if n := running(); n != 4 { // web=2 worker=1 scheduler=1
			t.Fatalf("after start: %d service instances, want 4", n)
		}
		if out, _, code := s.run("start", "hello"); code == 0 {
			t.Fatalf("start of a running app succeeded:\n%s", out)
		}
		hist := s.mustRun("deploys", "-a", "hello")
		for _, want := range []string{" stop hello v1", " start hello v1"} {
			if !strings.Contains(hist, want) {
				t.Errorf("deploys has no %q:\n%s", want, hist)
			}
		}
	})
}
