package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Deploys prune artifacts beyond keep_releases, never the active release
// or its rollback target; `moorage prune` reports what it frees, old logs
// included.
func TestPrune(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, append(fastSpec, "  monitor: 1s", "  monitor: 1s\n  keep_releases: 2")...)
	for i := 1; i <= 4; i++ {
		setMessage(t, app, fmt.Sprintf("release %d", i))
		s.deploy(app, 0)
	}
	dirs, _ := filepath.Glob(filepath.Join(s.dataDir, "releases", "hello", "v*"))
	if len(dirs) != 2 {
		t.Fatalf("release directories after 4 deploys with keep_releases 2: %v", dirs)
	}
	for _, want := range []string{"v3", "v4"} {
		if _, err := os.Stat(filepath.Join(s.dataDir, "releases", "hello", want)); err != nil {
			t.Fatalf("%s (active or rollback target) was pruned", want)
		}
	}
	out, errOut, code := s.run("rollback", "-a", "hello", "--to", "v1")
	if code == 0 || !strings.Contains(out+errOut, "pruned") {
		t.Fatalf("rollback to a pruned release: %d\n%s%s", code, out, errOut)
	}
	s.mustRun("rollback", "-a", "hello") // to v3: still there
	s.waitBody("/", "release 3")

	// Old logs of instances that no longer run go; running ones stay.
	logs, _ := filepath.Glob(filepath.Join(s.dataDir, "logs", "hello", "hello-web-v1-*.log"))
	if len(logs) == 0 {
		t.Fatal("no logs of v1's web instances")
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, l := range logs {
		os.Chtimes(l, old, old)
	}
	out = s.mustRun("prune", "-a", "hello")
	if !regexp.MustCompile(`logs: freed [1-9]`).MatchString(out) {
		t.Fatalf("prune:\n%s", out)
	}
	for _, l := range logs {
		if _, err := os.Stat(l); err == nil {
			t.Fatalf("%s survived prune", l)
		}
	}
	if out := s.mustRun("logs", "-a", "hello", "-n", "5", "web"); !strings.Contains(out, "hello-web-v5-") {
		t.Fatalf("logs of the running release:\n%s", out)
	}
	if out := s.mustRun("prune", "-a", "hello", "--dry-run"); !strings.Contains(out, "no release beyond the retention window") {
		t.Fatalf("prune --dry-run:\n%s", out)
	}
}

// Logs survive deploys and a server restart; --release and --since filter.
func TestLogsAcrossDeploysAndRestarts(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	s.deploy(app, 0)
	s.deploy(app, 0)
	s.stop()
	s.start()
	out := s.mustRun("logs", "-a", "hello", "-n", "0", "--release", "v1", "web")
	if !strings.Contains(out, "hello-web-v1-1 | ") || strings.Contains(out, "hello-web-v2-") {
		t.Fatalf("logs of v1 after a deploy and a restart:\n%s", out)
	}
	if out := s.mustRun("logs", "-a", "hello", "--since", "1h", "-n", "0"); !strings.Contains(out, "hello-web-v2-") || !strings.Contains(out, "hello-scheduler-v2-1") {
		t.Fatalf("logs --since 1h:\n%s", out)
	}
	if out := s.mustRun("logs", "-a", "hello", "--since", "2030-01-01T00:00:00Z", "-n", "0"); strings.TrimSpace(out) != "" {
		t.Fatalf("logs since the future:\n%s", out)
	}
	// Lines are merged in time order across instances.
	lines := scanLines(s.mustRun("logs", "-a", "hello", "-n", "0", "--timestamps"))
	for i := 1; i < len(lines); i++ {
		if strings.Fields(lines[i])[0] < strings.Fields(lines[i-1])[0] {
			t.Fatalf("logs out of order:\n%s\n%s", lines[i-1], lines[i])
		}
	}
	// A service the app never had: refused, with the ones it has.
	out, errOut, code := s.run("logs", "-a", "hello", "nosuch")
	if code != 1 || !strings.Contains(errOut, `hello has no such service "nosuch"; give one of: release-1, scheduler, web, worker`) {
		t.Fatalf("logs nosuch: exit %d\n%s%s", code, out, errOut)
	}
}

// Maintenance mode serves a 503 page while the instances stay healthy.
func TestMaintenanceMode(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	s.mustRun("maintenance", "on", "-a", "hello", "--message", "Back at 10:00")
	code, body, _ := s.get("/")
	if code != 503 || !strings.Contains(body, "Back at 10:00") {
		t.Fatalf("maintenance: %d %q", code, body)
	}
	if ps := s.mustRun("ps", "-a", "hello"); !strings.Contains(ps, "MAINTENANCE MODE") || !strings.Contains(ps, "healthy (routed)") {
		t.Fatalf("ps in maintenance:\n%s", ps)
	}
	// It survives a restart.
	s.stop()
	s.start()
	waitFor(t, 30*time.Second, "the maintenance page after a restart", func() error {
		if code, _, _ := s.get("/"); code != 503 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	s.mustRun("maintenance", "off", "-a", "hello")
	s.waitBody("/", "release=v1")
}

// An accessory is never restarted by deploys unless its spec changed, and
// `moorage accessory restart` restarts it on purpose.
func TestAccessoryLifecycle(t *testing.T) {
	parallel(t)
	s := startServer(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs busybox (apt-get install busybox-static)")
	}
	acc := "accessories:\n  cache:\n    command: busybox httpd -f -p 127.0.0.1:$PORT -h .\n    port: %s\n    env: {NOTE: %s}\nvolumes:"
	_, port, _ := strings.Cut(freePort(t), ":")
	app := helloApp(t, append(fastSpec, "volumes:", fmt.Sprintf(acc, port, "one"))...)
	s.deploy(app, 0)
	pid := func() int {
		for _, in := range s.ps("hello").Instances {
			if in.Kind == "accessory" {
				return in.PID
			}
		}
		t.Fatal("no accessory")
		return 0
	}
	first := pid()
	out := s.deploy(app, 0)
	if !strings.Contains(out, "accessory cache: keep") || pid() != first {
		t.Fatalf("a deploy touched an unchanged accessory:\n%s", out)
	}
	editSpec(t, app, "NOTE: one", "NOTE: two")
	out = s.deploy(app, 0, "-v")
	if !strings.Contains(out, "accessory cache: restart (its spec changed)") || pid() == first {
		t.Fatalf("a changed accessory was not restarted:\n%s", out)
	}
	second := pid()
	s.mustRun("accessory", "restart", "-a", "hello", "cache")
	if pid() == second {
		t.Fatal("accessory restart did not restart it")
	}
	// Services reach it through the variables moorage sets.
	if out := s.mustRun("run", "-a", "hello", "--", "sh", "-c", "echo $MOORAGE_ACCESSORY_CACHE_ADDR"); strings.TrimSpace(out) != "127.0.0.1:"+port {
		t.Fatalf("MOORAGE_ACCESSORY_CACHE_ADDR = %q", out)
	}
}

// A volume is removed only by `moorage volume rm --yes`, and only once no
// release mounts it.
func TestVolumeRemove(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := helloApp(t, append(fastSpec, "  data: {mount: /app/data}", "  data: {mount: /app/data}\n  scratch: {mount: /app/scratch, services: [worker]}")...)
	s.deploy(app, 0)
	dir := s.volumePath("hello", "scratch")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("volume scratch: %v", err)
	}
	if out, errOut, code := s.run("volume", "rm", "-a", "hello", "scratch", "--yes"); code == 0 || !strings.Contains(out+errOut, "mounted by worker") {
		t.Fatalf("removing a mounted volume: %d %s%s", code, out, errOut)
	}
	editSpec(t, app, "\n  scratch: {mount: /app/scratch, services: [worker]}", "")
	s.deploy(app, 0)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal("a deploy removed a volume")
	}
	if out, errOut, code := s.run("volume", "rm", "-a", "hello", "scratch"); code == 0 || !strings.Contains(out+errOut, "--yes") {
		t.Fatalf("rm without --yes: %d %s%s", code, out, errOut)
	}
	s.mustRun("volume", "rm", "-a", "hello", "scratch", "--yes")
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("the volume is still there")
	}
}
