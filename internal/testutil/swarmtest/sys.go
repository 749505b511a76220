package swarmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The programs a cluster runs, found by Require.
var (
	busybox     = "/bin/busybox"
	unsharePath string
	nsenterPath string
	dockerdPath string
	ipPath      string

	requireOnce sync.Once
	requireErr  error
)

// Require skips t when this machine cannot run a swarm fixture (not root,
// or dockerd, containerd, nsenter, unshare, ip or busybox missing), or
// fails it, naming what is missing, when MOORAGE_REQUIRE_DOCKER=1.
func Require(t testing.TB) {
	t.Helper()
	requireOnce.Do(func() { requireErr = lookup() })
	if requireErr == nil {
		return
	}
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatalf("swarm fixture cannot run, and MOORAGE_REQUIRE_DOCKER=1: %v", requireErr)
	}
	t.Skipf("swarm fixture cannot run (set MOORAGE_REQUIRE_DOCKER=1 to make this a failure): %v", requireErr)
}

func lookup() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and dockerd need it)")
	}
	find := func(dst *string, name, pkg string) {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
			return
		}
		*dst = p
	}
	var containerd string
	find(&dockerdPath, "dockerd", "docker.io")
	find(&containerd, "containerd", "containerd")
	find(&nsenterPath, "nsenter", "util-linux")
	find(&unsharePath, "unshare", "util-linux")
	find(&ipPath, "ip", "iproute2")
	if _, err := os.Stat(busybox); err != nil {
		missing = append(missing, busybox+" (Debian package busybox-static)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s", strings.Join(missing, ", "))
	}
	return nil
}

// ip runs ip(8) with args.
func ip(args ...string) error {
	out, err := exec.Command(ipPath, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func netnsPath(name string) string { return "/var/run/netns/" + name }

// pidsUnder lists the processes whose command line mentions dir: the ones
// a cluster started there.
func pidsUnder(dir string) []int {
	needle := []byte(dir + "/")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, needle) {
			continue
		}
		// A zombie is dead already; it only waits for its parent.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// mountsUnder lists the host's mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var ms []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			ms = append(ms, f[4])
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms
}

// removeCgroups removes the cgroup directories named prefix* at the top of
// every hierarchy, innermost first, retrying while their last processes
// exit.
func removeCgroups(prefix string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + prefix + "*")
	more, _ := filepath.Glob("/sys/fs/cgroup/" + prefix + "*")
	roots = append(roots, more...)
	if len(roots) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last error
	err := Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		last = nil
		for _, r := range roots {
			var dirs []string
			filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := syscall.Rmdir(dirs[i]); err != nil && !os.IsNotExist(err) {
					last = fmt.Errorf("rmdir %s: %w", dirs[i], err)
				}
			}
		}
		return last == nil, nil
	})
	if err != nil {
		return last
	}
	return nil
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
