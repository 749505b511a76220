package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// warmSpec is an app with a real HTTP web (python's http.server, serving
// the release's directory) on the process runtime.
func warmSpec(keepWarm string) string {
	text := `app: warm
runtime: process
services:
  web:
    command: python3 -m http.server $PORT --bind 127.0.0.1
    health: {path: /message.txt, interval: 100ms}
deploy:
  monitor: 0s
`
	if keepWarm != "" {
		text += "  keep_warm: " + keepWarm + "\n"
	}
	return text
}

// deployText deploys the spec text with message.txt saying message, and
// fails the test unless the deploy succeeds.
func deployText(t *testing.T, e *Engine, text, message string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "moorage.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "message.txt"), []byte(message), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse("moorage.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := finish(t, e.Deploy(DeployRequest{Spec: sp, SpecYAML: text, ContextDir: dir, Owner: "test"})); status != store.DeploySucceeded {
		t.Fatalf("deploy %s: %s", message, status)
	}
}

// webs maps the app's running web instances to their PIDs.
func webs(t *testing.T, e *Engine, app string) map[string]int {
	t.Helper()
	obs, err := e.observe(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, in := range obs {
		if in.Kind == runtime.KindService && in.Service == "web" && in.State == runtime.StateRunning {
			out[in.ID] = in.PID
		}
	}
	return out
}

// A deploy leaves the web of the release it replaced running, unrouted
// (deploy.keep_warm, 10 minutes by default); a rollback to it within that
// time serves from those very processes before its own web starts, and
// the release it rolls back from stays warm in turn. Real process runtime
// and proxy.
func TestRollbackServesFromWarmWeb(t *testing.T) {
	e := processEngine(t)
	ctx := context.Background()
	text := warmSpec("")
	deployText(t, e, text, "one")
	deployText(t, e, text, "two")

	d2, err := e.st.ListDeploys(ctx, "warm", 1)
	if err != nil || len(d2) != 1 {
		t.Fatal(d2, err)
	}
	if !strings.Contains(d2[0].Plan, "keep v1's web warm for 10m (deploy.keep_warm), unrouted: warm-web-v1-1") {
		t.Fatalf("v2's deploy does not keep v1's web warm:\n%s", d2[0].Plan)
	}
	before := webs(t, e, "warm")
	if len(before) != 2 || before["warm-web-v1-1"] == 0 || before["warm-web-v2-1"] == 0 {
		t.Fatalf("after v2's deploy, running web instances %v; want v1's (warm) and v2's", before)
	}
	if got := e.proxy.Routes()["warm"]; len(got) != 1 || len(got[0].Targets) != 1 || got[0].Targets[0].ID != "warm-web-v2-1" {
		t.Fatalf("routes after v2's deploy: %+v, want v2's web only", got)
	}

	op := e.Rollback(RollbackRequest{App: "warm", Owner: "test"})
	if status, _ := finish(t, op); status != store.DeploySucceeded {
		t.Fatalf("rollback: %s", status)
	}
	d, err := e.st.GetDeploy(ctx, op.DeployID())
	if err != nil {
		t.Fatal(err)
	}
	serve, start := strings.Index(d.Plan, "serve at once from v1's warm web instances (v3 runs v1's artifact and config): web warm-web-v1-1"), strings.Index(d.Plan, "start web v3")
	if serve < 0 || start < serve {
		t.Fatalf("the rollback does not serve from v1's warm web before v3's starts:\n%s", d.Plan)
	}
	var journal []string
	served := false
	for _, s := range d.Steps {
		journal = append(journal, s.Name+" "+s.Outcome)
		if s.Name == "serve-warm" && s.Outcome == "ok" && strings.Contains(s.Output, "routing to warm-web-v1-1") {
			served = true
		}
	}
	if !served {
		t.Fatalf("the serve-warm step did not route to v1's web; steps: %s", strings.Join(journal, ", "))
	}
	if !strings.Contains(d.Plan, "drain (up to 30s) and stop warm-web-v1-1") || !strings.Contains(d.Plan, "keep v2's web warm") {
		t.Errorf("the rollback's plan does not stop v1's web once v3's serves, or does not keep v2's warm:\n%s", d.Plan)
	}
	after := webs(t, e, "warm")
	if len(after) != 2 || after["warm-web-v2-1"] != before["warm-web-v2-1"] || after["warm-web-v3-1"] == 0 {
		t.Fatalf("after the rollback, running web instances %v; want v3's and v2's (the same process, warm)", after)
	}
	if got := e.proxy.Routes()["warm"]; len(got) != 1 || len(got[0].Targets) != 1 || got[0].Targets[0].ID != "warm-web-v3-1" {
		t.Fatalf("routes after the rollback: %+v, want v3's web only", got)
	}

	// A scale keeps the warm web; keep_warm: 0 stops it at the next deploy.
	if status, _ := finish(t, e.Scale(ScaleRequest{App: "warm", Owner: "test", Replicas: map[string]int{"web": 2}})); status != store.DeploySucceeded {
		t.Fatalf("scale: %s", status)
	}
	if w := webs(t, e, "warm"); w["warm-web-v2-1"] != before["warm-web-v2-1"] {
		t.Fatalf("the scale stopped v2's warm web: %v", w)
	}
	deployText(t, e, warmSpec("0s"), "three")
	if w := webs(t, e, "warm"); len(w) != 2 || w["warm-web-v4-1"] == 0 || w["warm-web-v4-2"] == 0 {
		t.Fatalf("with keep_warm: 0s, running web instances %v; want v4's two only", w)
	}
}

// Once keep_warm is over, the server stops the warm web, under the app's
// lock, and says so in the app's events.
func TestKeepWarmOver(t *testing.T) {
	e := processEngine(t)
	ctx := context.Background()
	text := warmSpec("2s")
	deployText(t, e, text, "one")
	deployText(t, e, text, "two")
	// Done once v1's web is gone, the event recorded and the lock
	// released (in that order: the instance stops before the cool-down
	// records it and lets the lock go).
	want := "stopped the web instances kept warm after the deploy of v2 (deploy.keep_warm is over): warm-web-v1-1"
	deadline := time.Now().Add(90 * time.Second)
	for {
		w := webs(t, e, "warm")
		evs, err := e.st.ListEvents(ctx, "warm", 20)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, ev := range evs {
			all = append(all, ev.Message)
		}
		l, _ := e.st.GetLock(ctx, "warm")
		if len(w) == 1 && w["warm-web-v2-1"] != 0 && strings.Contains(strings.Join(all, "\n"), want) && l == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("90s after a keep_warm of 2s: running web %v, lock %+v, events:\n%s", w, l, strings.Join(all, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
