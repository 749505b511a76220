package kubetest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cleanup removes everything a cluster rooted at dir leaves on the machine,
// whether it was stopped or killed: the processes it started (found by the
// pid files in dir and by their command lines naming dir: containerd's
// shims outlive a killed containerd), the containers (every process in the
// cluster's cgroups), the mounts under dir (overlay snapshots, the
// kubelet's volumes, the pods' network namespaces), the CNI bridge, the
// cgroups, and dir itself. It is what Start runs first and Stop runs last.
func cleanup(dir string) error {
	var errs []error
	// 1. The processes, the kubelet first so that it does not start
	// anything again, then what runs the containers.
	for _, name := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "containerd", "etcd"} {
		if pid := readPid(filepath.Join(dir, "run", name+".pid")); pid > 0 && cmdlineHas(pid, dir) {
			killWait(pid, 10*time.Second)
		}
	}
	for _, pid := range pidsNaming(dir) {
		killWait(pid, 5*time.Second)
	}
	// 2. The containers, in the cluster's cgroups (one tree per v1
	// hierarchy, or one in the unified hierarchy).
	roots := cgroupRoots()
	for _, root := range roots {
		killCgroupTree(root)
	}
	// 3. The mounts under dir, deepest first.
	mounts, err := mountsUnder(dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	// 4. The bridge the CNI plugin made (the veths went with the pods'
	// network namespaces).
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
		if out, err := exec.Command("ip", "link", "delete", bridgeName).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link delete %s: %v: %s", bridgeName, err, out))
		}
	}
	// 5. The cgroups, deepest first (a cgroup is removed with rmdir once
	// it has no process and no child).
	for _, root := range roots {
		if err := removeCgroupTree(root); err != nil {
			errs = append(errs, err)
		}
	}
	// 6. The kubelet's links to the containers' logs (it always makes
	// them in /var/log/containers), then the files.
	for _, l := range logLinks(dir) {
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func readPid(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func cmdlineHas(pid int, s string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), s)
}

// pidsNaming lists the processes whose command line names dir (other than
// this one): the shims of the cluster's containerd say its socket.
func pidsNaming(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdlineHas(pid, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killWait sends SIGTERM, then SIGKILL after grace, and waits (bounded)
// for the process to be gone.
func killWait(pid int, grace time.Duration) {
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && alive(pid) {
		time.Sleep(50 * time.Millisecond)
	}
}

// alive is whether pid runs and is not a zombie (a child of this process
// that was not waited for yet counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// cgroupRoots is the cluster's cgroup (cgroupRoot, as the kubelet is told)
// in every hierarchy mounted on this machine.
func cgroupRoots() []string {
	var roots []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", cgroupRoot)}
	}
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if st, err := os.Lstat(p); err != nil || !st.IsDir() {
			continue // cpu,cpuacct style symlinks name a hierarchy twice
		}
		roots = append(roots, filepath.Join(p, cgroupRoot))
	}
	return roots
}

func killCgroupTree(root string) {
	for round := 0; round < 20; round++ {
		found := false
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || filepath.Base(p) != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					found = true
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func removeCgroupTree(root string) error {
	var dirs []string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		var err error
		// A cgroup whose last process just died can be busy a moment.
		for i := 0; i < 50; i++ {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or under dir, deepest (latest)
// first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	// Later mounts may sit on earlier ones: unmount in reverse order.
	for i, j := 0, len(mounts)-1; i < j; i, j = i+1, j-1 {
		mounts[i], mounts[j] = mounts[j], mounts[i]
	}
	return mounts, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// leftovers lists what of a cluster rooted at dir is still on the machine:
// what cleanup removes. Empty after a Stop.
func leftovers(dir string) []string {
	var left []string
	for _, pid := range pidsNaming(dir) {
		if alive(pid) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			left = append(left, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
		}
	}
	mounts, _ := mountsUnder(dir)
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
		left = append(left, "interface "+bridgeName)
	}
	for _, root := range cgroupRoots() {
		if _, err := os.Stat(root); err == nil {
			left = append(left, "cgroup "+root)
		}
	}
	for _, l := range logLinks(dir) {
		left = append(left, "log link "+l)
	}
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "directory "+dir)
	}
	return left
}

// containerLogLinks is where the kubelet links each container's log.
const containerLogLinks = "/var/log/containers"

// logLinks lists the links in /var/log/containers to logs under dir.
func logLinks(dir string) []string {
	ents, _ := os.ReadDir(containerLogLinks)
	var links []string
	for _, e := range ents {
		p := filepath.Join(containerLogLinks, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
			links = append(links, p)
		}
	}
	return links
}
