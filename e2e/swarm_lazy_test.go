package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A server that starts while its swarm manager does not answer (a power
// cut that took both down, and the server came back first) still starts,
// serves its other runtimes' apps, and says the swarm apps are managed once
// the manager answers. When it does, with no server restart, the swarm app
// is converged to its active release and served again, and the next deploy
// goes through. Before, such a server ran without its swarm runtime until
// it was restarted by hand.
func swarmServerStartsWhileManagerDown(t *testing.T) {
	s := startServerRT(t, "swarm")
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "before")
	s.deploy(app, 0)
	s.waitBody("/", "message=before")

	s.stop()
	m := s.swarm.Manager()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	s.start()
	if !strings.Contains(s.logs(), "swarm manager not reachable") {
		t.Fatalf("the server does not say its swarm manager is not reachable:\n%s", tail(s.logs(), 40))
	}
	// A deploy while the manager is down fails before anything changes,
	// saying why.
	setMessage(t, app, "after")
	if out := s.deploy(app, 1); !strings.Contains(out, "swarm") {
		t.Fatalf("the deploy without a manager does not say what is missing:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.restartNode(ctx, m)
	// The server's retries reach the manager (every 2 s at first, at most
	// 30 s apart) and converge the app: v1 serves again.
	waitFor(t, 2*time.Minute, "the swarm app to be managed and served again", func() error {
		st := s.ps("hello")
		running := 0
		for _, in := range st.Instances {
			if in.Release == "v1" && in.State == "running" {
				running++
			}
		}
		if st.Active != "v1" || running == 0 {
			return fmt.Errorf("ps: active %q, %d instances of v1 running", st.Active, running)
		}
		code, body, err := s.get("/")
		if err != nil || code != 200 || !strings.Contains(body, "message=before") {
			return fmt.Errorf("GET /: %d %q %v", code, body, err)
		}
		return nil
	})
	if !strings.Contains(s.logs(), "the runtime is connected") {
		t.Fatalf("the server does not say its swarm runtime connected:\n%s", tail(s.logs(), 40))
	}
	s.deploy(app, 0)
	s.waitBody("/", "message=after")
	if c := volumeFile(s, "hello", "scheduler-conflicts.log"); c != "" {
		t.Fatalf("two schedulers were alive at once:\n%s", c)
	}
}
