package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helloCompose is examples/hello as a docker compose project: the
// migrations one-shot the others wait for, web with a health check and a
// published port, a worker, a scheduler that must never run twice, and a
// named volume.
const helloCompose = `x-moorage: {monitor: 1s}
x-hello: &hello
  build: .
  volumes: [data:/app/data]
  depends_on:
    migrate: {condition: service_completed_successfully}
services:
  migrate:
    build: .
    command: ["./hello", "migrate"]
    volumes: [data:/app/data]
    restart: "no"
  web:
    <<: *hello
    command: ["./hello", "web"]
    ports: ["8080:8080"]
    deploy: {replicas: 2}
    healthcheck:
      test: ["CMD", "wget", "-qO", "/dev/null", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 2s
    restart: always
  worker:
    <<: *hello
    command: ["./hello", "worker"]
  scheduler:
    <<: *hello
    command: ["./hello", "scheduler"]
    x-moorage: {singleton: true}
volumes:
  data: {}
`

// composeHello writes the compose project: the example's code, its binary
// built as a compose user would before `docker compose build`, and no
// moorage.yaml.
func composeHello(t *testing.T, s *server) string {
	t.Helper()
	dir := s.hello(t)
	if err := os.Remove(filepath.Join(dir, "moorage.yaml")); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "hello", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yaml"), []byte(helloCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A compose project deploys unmodified on docker, redeploys under load
// with no failed request, migrations once per deploy and the scheduler
// never doubled, and rolls back.
func TestComposeDeploysOnDocker(t *testing.T) {
	parallel(t)
	s := startServerRT(t, "docker")
	dir := composeHello(t, s)
	file := filepath.Join(dir, "docker-compose.yaml")
	out := s.mustRun("deploy", "-f", file)
	for _, want := range []string{
		"migrate → release task: 1 of 1",
		"web → service web: routed by moorage's proxy to port 8080 (the proxy takes over published port 8080), 2 replicas, health: the compose healthcheck gates it",
		"scheduler → service scheduler: 1 replica, singleton",
		"services.migrate.restart: ignored (services migrate, web)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy -f output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "moorage.compose.yaml")); err == nil {
		t.Errorf("deploy -f wrote into the project directory")
	}
	s.waitBody("/", "release=v1")

	const redeploys = 2
	l := startLoader(s.http, "/", 4)
	for i := 1; i <= redeploys; i++ {
		setMessage(t, dir, fmt.Sprintf("compose %d", i))
		s.mustRun("deploy", "-f", file)
		s.waitBody("/", fmt.Sprintf("message=compose %d", i))
	}
	rs := l.stop()
	if f := failures(rs); len(f) > 0 {
		t.Fatalf("%d of %d requests failed during %d compose redeploys:\n%s", len(f), len(rs), redeploys, strings.Join(f, "\n"))
	}
	t.Logf("%d requests during %d compose redeploys, none failed", len(rs), redeploys)
	checkMigrations(t, s, "hello", redeploys+1)
	checkSingletonStarts(t, s, "hello", redeploys+1)

	s.mustRun("rollback", "-a", "hello")
	s.waitBody("/", fmt.Sprintf("message=compose %d", redeploys-1))

	// What cannot be honoured is refused before anything is uploaded.
	bad := filepath.Join(dir, "docker-compose.host.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  web:\n    network_mode: host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, e, code := s.run("deploy", "-f", file, "-f", bad)
	if code != 2 || !strings.Contains(e, "docker-compose.host.yaml:3: services.web.network_mode: host networking is not supported") {
		t.Errorf("network_mode: host: exit %d\n%s%s", code, o, e)
	}
}
