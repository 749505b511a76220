package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/dockersock"
)

// requireDocker skips the test when no Docker Engine answers, or fails it
// when MOORAGE_REQUIRE_DOCKER=1 (CI).
func requireDocker(t testing.TB) {
	t.Helper()
	sock := dockersock.Engine()
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but no Docker Engine answers at %s: %v", sock, err)
	}
	t.Skipf("no Docker Engine at %s (%v); set MOORAGE_REQUIRE_DOCKER=1 to fail instead", sock, err)
}

// docker runs the docker CLI.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// cleanupDocker removes everything a test server made on the engine.
func cleanupDocker(t testing.TB, prefix string) {
	filter := "label=moorage.prefix=" + prefix
	if ids, _ := docker("ps", "-aq", "--filter", filter); ids != "" {
		docker(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("volume", "ls", "-q", "--filter", filter); ids != "" {
		docker(append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("network", "ls", "-q", "--filter", filter); ids != "" {
		docker(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("images", "-q", "--filter", filter); ids != "" {
		docker(append([]string{"rmi", "-f"}, strings.Fields(ids)...)...)
	}
}

// dockerVolumePath is the host directory of a docker volume.
func dockerVolumePath(t testing.TB, prefix, app, name string) string {
	p, err := docker("volume", "inspect", "-f", "{{.Mountpoint}}", prefix+"_"+app+"_"+name)
	if err != nil {
		return filepath.Join(os.TempDir(), "no-such-volume")
	}
	return p
}

// prepareDockerApp adds a shell and a few tools to the example's FROM
// scratch image, for the tests that run `sh -c` or `cat` one-offs:
// Debian's static busybox as /bin/busybox, with /bin/sh, /bin/cat... as
// symlinks to it (one layer).
func prepareDockerApp(t testing.TB, dir string) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return // tests that need a shell skip on docker without it
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "busybox-bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "ls", "echo", "env", "true", "false", "sleep", "wget", "test"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	df := filepath.Join(dir, "Dockerfile")
	d, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	d = append(d, []byte("COPY busybox-bin/ /bin/\n")...)
	if err := os.WriteFile(df, d, 0o644); err != nil {
		t.Fatal(err)
	}
}

// proxyMarkedDown returns when the server's proxy took target out of
// rotation (its "target unhealthy" log line) at or after since.
func (s *server) proxyMarkedDown(target string, since time.Time) (time.Time, bool) {
	for _, l := range scanLines(s.logs()) {
		if !strings.Contains(l, `msg="target unhealthy"`) || !strings.Contains(l, " target="+target+" ") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && !at.Before(since.Truncate(time.Millisecond)) {
			return at, true
		}
	}
	return time.Time{}, false
}
