package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// swarmFilesCompose is a compose project whose web reads a file of its
// ./custom bind mount: it runs in custom/site/en, so the message of GET /
// is custom/site/en/message.txt. The one-shot the web waits for (a release
// task) lists custom/.
const swarmFilesCompose = `x-moorage: {app: hello, monitor: 1s}
services:
  list:
    build: .
    command: ["/bin/ls", "-lR", "/app/custom"]
    volumes: ["./custom:/app/custom:ro"]
    restart: "no"
  web:
    build: .
    command: ["/bin/sh", "-c", "cd /app/custom/site/en && exec /app/hello web"]
    volumes: ["./custom:/app/custom:ro"]
    ports: ["8080:8080"]
    deploy: {replicas: 2}
    healthcheck:
      test: ["CMD", "/bin/wget", "-qO", "/dev/null", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 2s
    depends_on:
      list: {condition: service_completed_successfully}
`

// A compose project with a ./custom directory bind mount deploys on a
// three-node swarm: every web replica, on whichever node, reads the file
// (in a subdirectory) from Swarm configs, not from the server's disk; a
// redeploy with the file changed serves the new content, a rollback the
// old one again.
func swarmComposeFiles(t *testing.T) {
	begin := time.Now()
	s := startServerRT(t, "swarm")
	dir := composeHello(t, s)
	file := filepath.Join(dir, "docker-compose.yaml")
	if err := os.WriteFile(file, []byte(swarmFilesCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string]string{
		"custom/site/en/message.txt": "custom one\n",
		"custom/bin/hook.sh":         "#!/bin/sh\necho hook\n",
		"custom/uploads/":            "",
		"custom/site/__init__.py":    "",
	} {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			os.MkdirAll(full, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "custom/bin/hook.sh"), 0o755)
	deploy := func() string {
		t.Helper()
		out, errOut, code := s.run("deploy", "-f", file, "--runtime", "swarm")
		if code != 0 {
			t.Fatalf("deploy -f --runtime swarm: exit %d\n%s%s", code, out, errOut)
		}
		return out + errOut
	}

	out := deploy()
	for _, want := range []string{
		"web → service web: routed by moorage's proxy to port 8080",
		"files ./custom:/app/custom (read-only, copied with each release)",
		"2 files of the upload (./dir mounts) are swarm configs, 2 new",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	// The release task saw the tree: the script's mode, the empty
	// directory.
	hook, uploads, empty := false, false, false
	for _, l := range scanLines(out) {
		hook = hook || (strings.Contains(l, "-rwxr-xr-x") && strings.HasSuffix(l, " hook.sh"))
		uploads = uploads || (strings.Contains(l, "dr") && strings.HasSuffix(l, " uploads"))
		empty = empty || strings.HasSuffix(l, " __init__.py")
	}
	if !hook || !uploads || !empty {
		t.Errorf("the release task's ls -lR shows no executable hook.sh (%v), no uploads directory (%v) or no empty __init__.py (%v):\n%s", hook, uploads, empty, out)
	}
	nodes := swarmWebServes(t, s, "custom one")
	onWorker := false
	for _, n := range nodes {
		onWorker = onWorker || n != s.swarm.Manager().Name
	}
	if !onWorker {
		t.Errorf("no web replica runs on a worker (%v): nothing shows that the files reach the nodes", nodes)
	}
	checkServedFromConfigs(t, s)
	t.Logf("first deploy served by web on %v at %s", nodes, time.Since(begin).Round(time.Second))

	if err := os.WriteFile(filepath.Join(dir, "custom/site/en/message.txt"), []byte("custom two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := deploy(); !strings.Contains(out, "2 files of the upload (./dir mounts) are swarm configs, 1 new") {
		t.Errorf("the redeploy made other configs than the changed file's:\n%s", out)
	}
	swarmWebServes(t, s, "custom two")

	s.mustRun("rollback", "-a", "hello")
	swarmWebServes(t, s, "custom one")
	t.Logf("deployed, redeployed and rolled back in %s", time.Since(begin).Round(time.Second))
}

// swarmWebServes waits until every web instance of the active release
// has answered GET / through the proxy with message msg, and returns the
// nodes they run on.
func swarmWebServes(t *testing.T, s *server, msg string) map[string]string {
	t.Helper()
	nodes := map[string]string{} // instance → node
	waitFor(t, 90*time.Second, "every web replica of the active release to serve "+msg, func() error {
		st := s.ps("hello")
		want := map[string]string{}
		for _, in := range st.serving() {
			if in.Service == "web" && in.Release == st.Active && in.State == "running" {
				want[in.ID] = in.Node
			}
		}
		if len(want) < 2 {
			return fmt.Errorf("%d web instances of %s running", len(want), st.Active)
		}
		seen := map[string]bool{}
		for i := 0; i < 20 && len(seen) < len(want); i++ {
			code, body, err := s.get("/")
			if err != nil || code != 200 {
				return fmt.Errorf("GET /: %d %v %q", code, err, body)
			}
			id := strings.TrimSpace(body[strings.LastIndex(body, "instance=")+len("instance="):])
			if _, ok := want[id]; ok && strings.Contains(body, "release="+st.Active+" message="+msg+" ") {
				seen[id] = true
			}
		}
		if len(seen) < len(want) {
			return fmt.Errorf("%d of %d web instances of %s served %q", len(seen), len(want), st.Active, msg)
		}
		nodes = want
		return nil
	})
	return nodes
}

// checkServedFromConfigs checks that the web services mount ./custom
// from Swarm configs, and bind-mount nothing: no node needs the server's
// disk.
func checkServedFromConfigs(t *testing.T, s *server) {
	t.Helper()
	res, err := s.swarm.Client().ServiceList(context.Background(), client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, svc := range res.Items {
		l := svc.Spec.Labels
		if l["moorage.prefix"] != s.prefix || l["moorage.service"] != "web" {
			continue
		}
		n++
		cs := svc.Spec.TaskTemplate.ContainerSpec
		if len(cs.Configs) != 2 {
			t.Errorf("service %s has %d configs, want 2", svc.Spec.Name, len(cs.Configs))
		}
		for _, m := range cs.Mounts {
			if m.Type == mount.TypeBind && m.Source != "/dev/null" { // /dev/null: an empty file
				t.Errorf("service %s bind-mounts %s", svc.Spec.Name, m.Source)
			}
		}
	}
	if n == 0 {
		t.Error("no web service on the swarm")
	}
}
