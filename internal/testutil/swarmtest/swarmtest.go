// Package swarmtest starts a real Docker Swarm for tests: N dockerd
// processes on this machine (one manager, the rest workers), each in its
// own network, PID, UTS and mount namespaces, joined by veth pairs to one
// bridge so that the host (where a moorage server and its proxy run)
// reaches every node's address. The machine's own Docker Engine is never a
// node and is never touched.
//
// Layout of a cluster in slot S (0..MaxSlots-1, one flock each, so that
// concurrent test processes never share one and a dead run's slot is
// recognised and cleaned before reuse):
//
//	host:  veth mswtSh 10.231.S.1/24 ──┐
//	netns mswtShub: bridge br0 ─────────┼── veth ── netns mswtSn0: eth0 10.231.S.10 (manager)
//	                                    ├── veth ── netns mswtSn1: eth0 10.231.S.11
//	                                    └── veth ── netns mswtSn2: eth0 10.231.S.12
//
// The bridge lives in a namespace of its own because the host's iptables
// (FORWARD policy DROP, set by the host engine) would otherwise filter the
// bridged traffic (br_netfilter): joins time out with "dial tcp
// 10.231.S.10:2377: i/o timeout".
//
// Each node's dockerd runs under `unshare --pid --fork --kill-child --uts
// --mount --mount-proc` and `nsenter --net=/var/run/netns/...`: killing the
// unshare process kills everything of the node at once (dockerd, its
// containerd, the shims and every task), which is what losing a machine
// looks like, and the node's mounts never leak into the host's namespace.
// `ip netns exec` is not used: it remounts /sys and hides the cgroups
// ("Devices cgroup isn't mounted").
package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// MaxSlots is how many slots (addresses, namespaces, directories) exist.
const MaxSlots = 8

// Running is how many clusters may be up at once on one machine, across
// every test process: MOORAGE_SWARMTEST_CLUSTERS, default 2 (at most
// MaxSlots). A cluster is three dockerds with their containerds and tasks;
// on a two-core machine five or six at once, beside the host engine's own
// tests, starved everything (load above 40: health checks of unrelated
// tests timed out, swarm heartbeats were missed). Start waits for a slot
// instead. One at a time was measured too: the suite then took 8 minutes
// longer, the swarm tests of the e2e package holding their -parallel
// slots while they waited.
//
// A test that holds a cluster must not wait for anything that needs a
// -parallel slot (its own t.Parallel subtests): the tests waiting for a
// cluster may hold every slot.
func Running() int {
	n, err := strconv.Atoi(os.Getenv("MOORAGE_SWARMTEST_CLUSTERS"))
	if err != nil || n < 1 {
		return 2
	}
	return min(n, MaxSlots)
}

// slotWait bounds how long Start waits for a slot when the test has no
// deadline of its own.
const slotWait = 40 * time.Minute

// BaseDir holds every cluster's files: BaseDir/slotS.lock and BaseDir/sS/.
var BaseDir = filepath.Join(os.TempDir(), "moorage-swarmtest")

// Options configure Start.
type Options struct {
	// Workers is the number of worker nodes (default 2; -1 for none).
	Workers int
	// HeartbeatPeriod is the swarm's dispatcher heartbeat period
	// (Spec.Dispatcher.HeartbeatPeriod). Zero keeps Swarm's default (5s).
	// A node that misses heartbeats is marked down after about this
	// period times the grace multiplier; tests of node loss set it low.
	HeartbeatPeriod time.Duration
	// InsecureRegistries are given to every node's dockerd
	// (--insecure-registry), e.g. a registry on the host's bridge address.
	InsecureRegistries []string
	// Timeout bounds the whole bring-up (default 2m).
	Timeout time.Duration
}

// Cluster is a running swarm.
type Cluster struct {
	Slot   int
	HostIP string  // the host's address on the cluster's bridge
	Nodes  []*Node // Nodes[0] is the manager
	// Timings of the bring-up, by phase: "network", "dockerd",
	// "init", "join", "ready", and "total".
	Timings map[string]time.Duration

	t    testing.TB
	dir  string
	lock *os.File
	opts Options
}

// Manager is the manager node.
func (c *Cluster) Manager() *Node { return c.Nodes[0] }

// Client is the manager's Docker client: the one a swarm runtime talks to.
func (c *Cluster) Client() *client.Client { return c.Nodes[0].Client }

// Workers are the worker nodes.
func (c *Cluster) Workers() []*Node { return c.Nodes[1:] }

// Node is one member of the swarm.
type Node struct {
	Name   string // node0, node1... (also its hostname, as swarm reports it)
	Addr   string // its address, reachable from the host
	ID     string // its swarm node ID
	Socket string // dockerd's unix socket
	Dir    string // data and exec roots, config, log
	Client *client.Client

	c       *Cluster
	index   int
	netns   string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	started time.Time
}

func (c *Cluster) prefix() string { return fmt.Sprintf("mswt%d", c.Slot) }
func (c *Cluster) hubNS() string  { return c.prefix() + "hub" }
func (c *Cluster) hostIf() string { return c.prefix() + "h" }
func (c *Cluster) subnet() string { return fmt.Sprintf("10.231.%d", c.Slot) }

// Start brings up a swarm of one manager and opts.Workers workers, waits
// until every node is Ready, and tears it all down when the test ends.
// It needs root, dockerd, containerd, nsenter, unshare and ip (see
// Require); without them it skips the test, or fails it when
// MOORAGE_REQUIRE_DOCKER=1.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	Require(t)
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.Workers < 0 {
		opts.Workers = 0
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}

	c := &Cluster{t: t, opts: opts, Timings: map[string]time.Duration{}}
	waited := time.Now()
	if err := c.waitSlot(t); err != nil {
		t.Fatal(err)
	}
	c.Timings["wait"] = time.Since(waited)
	t.Cleanup(c.close)
	// The bring-up's bound starts once the slot is ours.
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	c.dir = filepath.Join(BaseDir, fmt.Sprintf("s%d", c.Slot))
	c.HostIP = c.subnet() + ".1"
	// A crashed run of this slot may have left anything behind.
	if err := c.cleanup(); err != nil {
		t.Fatalf("swarmtest: cleaning slot %d of an earlier run: %v", c.Slot, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})

	begin := time.Now()
	phase := begin
	mark := func(name string) {
		now := time.Now()
		c.Timings[name] = now.Sub(phase)
		phase = now
	}
	for i := 0; i <= opts.Workers; i++ {
		n := &Node{
			Name:  fmt.Sprintf("node%d", i),
			Addr:  fmt.Sprintf("%s.%d", c.subnet(), 10+i),
			c:     c,
			index: i,
			netns: fmt.Sprintf("%sn%d", c.prefix(), i),
		}
		n.Dir = filepath.Join(c.dir, n.Name)
		n.Socket = filepath.Join(n.Dir, "docker.sock")
		c.Nodes = append(c.Nodes, n)
	}
	if err := c.setupNetwork(); err != nil {
		t.Fatalf("swarmtest: network: %v", err)
	}
	mark("network")

	if err := c.each(func(n *Node) error { return n.start(ctx) }); err != nil {
		t.Fatalf("swarmtest: dockerd: %v", err)
	}
	mark("dockerd")

	m := c.Manager()
	spec := swarm.Spec{}
	spec.Dispatcher.HeartbeatPeriod = opts.HeartbeatPeriod
	init, err := m.Client.SwarmInit(ctx, client.SwarmInitOptions{
		ListenAddr:    m.Addr + ":2377",
		AdvertiseAddr: m.Addr + ":2377",
		Spec:          spec,
		// Keep overlay subnets far from the bridge's 10.231.0.0/16.
		DefaultAddrPool: []netip.Prefix{netip.MustParsePrefix("10.232.0.0/16")},
		SubnetSize:      24,
	})
	if err != nil {
		t.Fatalf("swarmtest: swarm init on %s: %v", m.Name, err)
	}
	m.ID = init.NodeID
	mark("init")

	sw, err := m.Client.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		t.Fatalf("swarmtest: swarm inspect: %v", err)
	}
	token := sw.Swarm.JoinTokens.Worker
	if err := c.each(func(n *Node) error {
		if n == m {
			return nil
		}
		if _, err := n.Client.SwarmJoin(ctx, client.SwarmJoinOptions{
			ListenAddr:    n.Addr + ":2377",
			AdvertiseAddr: n.Addr + ":2377",
			RemoteAddrs:   []string{m.Addr + ":2377"},
			JoinToken:     token,
		}); err != nil {
			return fmt.Errorf("%s joins: %w", n.Name, err)
		}
		info, err := n.Client.Info(ctx, client.InfoOptions{})
		if err != nil {
			return fmt.Errorf("%s info: %w", n.Name, err)
		}
		n.ID = info.Info.Swarm.NodeID
		return nil
	}); err != nil {
		t.Fatalf("swarmtest: %v", err)
	}
	mark("join")

	for _, n := range c.Nodes {
		if _, err := c.WaitNodeState(ctx, n, swarm.NodeStateReady); err != nil {
			t.Fatalf("swarmtest: %v", err)
		}
	}
	mark("ready")
	c.Timings["total"] = time.Since(begin)
	t.Logf("swarmtest: slot %d (waited %s for it): %d nodes ready in %s (network %s, dockerd %s, init %s, join %s, ready %s)",
		c.Slot, c.Timings["wait"].Round(time.Millisecond), len(c.Nodes), c.Timings["total"].Round(time.Millisecond),
		c.Timings["network"].Round(time.Millisecond), c.Timings["dockerd"].Round(time.Millisecond),
		c.Timings["init"].Round(time.Millisecond), c.Timings["join"].Round(time.Millisecond),
		c.Timings["ready"].Round(time.Millisecond))
	return c
}

// each runs f for every node at once and returns the first error.
func (c *Cluster) each(f func(*Node) error) error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Node returns the node whose swarm ID or name is id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id || n.Name == id {
			return n
		}
	}
	return nil
}

// WaitNodeState polls the manager until it reports n in state, and
// returns how long that took.
func (c *Cluster) WaitNodeState(ctx context.Context, n *Node, state swarm.NodeState) (time.Duration, error) {
	begin := time.Now()
	var last string
	err := Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		res, err := c.Client().NodeInspect(ctx, n.ID, client.NodeInspectOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = string(res.Node.Status.State)
		return res.Node.Status.State == state, nil
	})
	if err != nil {
		return time.Since(begin), fmt.Errorf("%s (%s) never became %s (last: %s): %w", n.Name, n.ID, state, last, err)
	}
	return time.Since(begin), nil
}

// Poll calls cond every interval until it returns true, an error, or ctx
// ends.
func Poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// start runs the node's dockerd and waits until it answers.
func (n *Node) start(ctx context.Context) error {
	// A restart after a kill is a reboot: the runtime state (exec-root,
	// /run on a real machine) is gone, and so is the pid file, whose pid,
	// from a dead PID namespace, could name a live process in the new one.
	for _, p := range []string{"exec", "dockerd.pid", "docker.sock"} {
		if err := os.RemoveAll(filepath.Join(n.Dir, p)); err != nil {
			return err
		}
	}
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o700); err != nil {
			return err
		}
	}
	// /etc/docker/daemon.json sets the host engine's data-root and storage
	// driver: a node must not read it.
	cfg := filepath.Join(n.Dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{
		"--config-file", cfg,
		"--data-root", filepath.Join(n.Dir, "data"),
		"--exec-root", filepath.Join(n.Dir, "exec"),
		"--pidfile", filepath.Join(n.Dir, "dockerd.pid"),
		"-H", "unix://" + n.Socket,
		"--storage-driver", "vfs",
		"--cgroup-parent", "/" + n.netns,
		// Not --bridge none: a task on no network sits on the default
		// bridge, and host-mode published ports need it.
	}
	for _, r := range n.c.opts.InsecureRegistries {
		args = append(args, "--insecure-registry", r)
	}
	// Nodes have no way out: a resolv.conf of their own (no name server)
	// makes a pull from Docker Hub fail at once instead of waiting for DNS
	// timeouts (40s per task start when an image is named by tag).
	resolv := filepath.Join(n.Dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	script := `hostname "$1" && ` + busybox + ` mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"`
	argv := append([]string{
		"--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--mount", "--propagation", "private",
		"--", busybox, "sh", "-c", script, "sh", n.Name, resolv,
		nsenterPath, "--net=" + netnsPath(n.netns), dockerdPath,
	}, args...)
	cmd := exec.Command(unsharePath, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test process dies, so does the node (unshare's --kill-child
	// passes it on to everything in the node's PID namespace).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	n.started = time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start dockerd: %w", n.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()

	if n.Client == nil {
		cli, err := client.New(client.WithHost("unix://" + n.Socket))
		if err != nil {
			return err
		}
		n.Client = cli
	}
	err = Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("%s: dockerd exited: %s", n.Name, tail(filepath.Join(n.Dir, "dockerd.log"), 15))
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := n.Client.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s: dockerd never answered at %s: %w", n.Name, n.Socket, err)
	}
	return nil
}

// Kill kills the whole node at once (dockerd, containerd, every task), as
// a power cut would; its address stays, now answering nothing. Restart
// brings it back.
func (n *Node) Kill() error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: still running 30s after SIGKILL", n.Name)
	}
	// --kill-child kills the PID namespace's first process, which takes the
	// whole namespace with it; wait for the last of it to go.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		return len(pidsUnder(n.Dir)) == 0, nil
	})
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: processes left after kill: %s", n.Name, describePids(pidsUnder(n.Dir)))
	}
	return nil
}

// describePids gives each process's command line and state, for an error.
func describePids(pids []int) string {
	var out []string
	for _, p := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		state := ""
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) {
			state = string(st[i+2])
		}
		out = append(out, fmt.Sprintf("%d (state %s): %s", p, state, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")))
	}
	return strings.Join(out, "; ")
}

// Alive reports whether the node's dockerd process is running.
func (n *Node) Alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Restart starts a killed node's dockerd again, with its state (it
// rejoins the swarm by itself), and waits until it answers.
func (n *Node) Restart(ctx context.Context) error {
	if n.Alive() {
		if err := n.Kill(); err != nil {
			return err
		}
	}
	return n.start(ctx)
}

// Disconnect cuts the node's network cable: its link on the bridge goes
// down; the node and its tasks keep running. Reconnect plugs it back.
func (n *Node) Disconnect() error {
	return ip("-n", n.c.hubNS(), "link", "set", n.Name, "down")
}

// Reconnect undoes Disconnect.
func (n *Node) Reconnect() error {
	return ip("-n", n.c.hubNS(), "link", "set", n.Name, "up")
}

// LogTail is the end of the node's dockerd log.
func (n *Node) LogTail(lines int) string {
	return tail(filepath.Join(n.Dir, "dockerd.log"), lines)
}

func (c *Cluster) dumpLogs() {
	for _, n := range c.Nodes {
		c.t.Logf("swarmtest: %s dockerd log (last 40 lines):\n%s", n.Name, n.LogTail(40))
	}
}

// close tears the cluster down: nodes, namespaces, cgroups, files, slot.
func (c *Cluster) close() {
	for _, n := range c.Nodes {
		if n.Client != nil {
			n.Client.Close()
		}
	}
	begin := time.Now()
	if err := c.cleanup(); err != nil {
		c.t.Errorf("swarmtest: teardown of slot %d: %v", c.Slot, err)
	}
	c.t.Logf("swarmtest: slot %d torn down in %s", c.Slot, time.Since(begin).Round(time.Millisecond))
	c.lock.Close() // releases the flock
}

// errAllTaken: every slot a cluster may take now is held.
var errAllTaken = errors.New("every slot is taken")

// waitSlot claims a slot, waiting while Running() clusters are up (in any
// process) until the test's deadline.
func (c *Cluster) waitSlot(t testing.TB) error {
	deadline := time.Now().Add(slotWait)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			deadline = dl.Add(-time.Minute)
		}
	}
	told := false
	for {
		err := c.claimSlot()
		if !errors.Is(err, errAllTaken) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarmtest: no free slot until the test's deadline: %d cluster(s) may run at once (MOORAGE_SWARMTEST_CLUSTERS) and all are taken (locks in %s)", Running(), BaseDir)
		}
		if !told {
			t.Logf("swarmtest: %d cluster(s) already up on this machine (MOORAGE_SWARMTEST_CLUSTERS=%d); waiting for one to end", Running(), Running())
			told = true
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// claimSlot takes the first free slot among the first Running(): one whose
// lock file nobody holds. A lock held by a process that died is free again
// (flock). Every other free slot that holds leftovers of a killed run is
// cleaned on the way.
func (c *Cluster) claimSlot() error {
	if err := os.MkdirAll(BaseDir, 0o700); err != nil {
		return err
	}
	running := Running()
	for s := 0; s < MaxSlots; s++ {
		f, err := os.OpenFile(filepath.Join(BaseDir, fmt.Sprintf("slot%d.lock", s)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if c.lock == nil && s < running {
			f.Truncate(0)
			f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
			c.Slot, c.lock = s, f
			continue // Start cleans it
		}
		other := &Cluster{Slot: s, dir: filepath.Join(BaseDir, fmt.Sprintf("s%d", s))}
		if other.dirty() {
			if err := other.cleanup(); err != nil {
				f.Close()
				return fmt.Errorf("swarmtest: cleaning slot %d of a killed run: %w", s, err)
			}
		}
		f.Close()
	}
	if c.lock == nil {
		return errAllTaken
	}
	return nil
}

// dirty reports whether anything of this slot exists: its directory, a
// network namespace, the host's veth.
func (c *Cluster) dirty() bool {
	if _, err := os.Stat(c.dir); err == nil {
		return true
	}
	if _, err := os.Stat("/sys/class/net/" + c.hostIf()); err == nil {
		return true
	}
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.prefix()) {
			return true
		}
	}
	return false
}

// cleanup removes everything a cluster of this slot may have made: its
// processes, network namespaces (and with them the veths and the bridge),
// the host's veth, cgroups and files. It is safe on a clean slot.
func (c *Cluster) cleanup() error {
	var errs []error
	// Processes: every one started from this slot's directory (unshare,
	// the node's shell, dockerd, containerd) has it on its command line;
	// killing a node's unshare kills its whole PID namespace.
	for _, n := range c.Nodes {
		if err := n.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if pids := pidsUnder(c.dir); len(pids) > 0 {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := Poll(ctx, 20*time.Millisecond, func() (bool, error) { return len(pidsUnder(c.dir)) == 0, nil })
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("processes of %s survive SIGKILL: %v", c.dir, pidsUnder(c.dir)))
		}
	}
	// Mounts: nodes mount in their own mount namespaces, which died with
	// them; unmount anything under the directory that reached the host's.
	for _, m := range mountsUnder(c.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	// Network: the namespaces hold the bridge and every veth but the
	// host's end, which goes with its peer; delete it too in case.
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.prefix()+"n") || e.Name() == c.hubNS() {
			if err := ip("netns", "delete", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if _, err := os.Stat("/sys/class/net/" + c.hostIf()); err == nil {
		// It goes with its peer in the hub, asynchronously: gone already
		// is fine, also between the check above and the delete ("No such
		// device" then, not "Cannot find device").
		if err := ip("link", "delete", c.hostIf()); err != nil && !strings.Contains(err.Error(), "Cannot find device") && !strings.Contains(err.Error(), "No such device") {
			errs = append(errs, err)
		}
	}
	// cgroups of the nodes' containers (--cgroup-parent), left behind when
	// a node is killed rather than stopped.
	if err := removeCgroups(c.prefix()); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// setupNetwork makes the hub namespace with its bridge, the host's link to
// it, and each node's namespace with its link.
func (c *Cluster) setupNetwork() error {
	hub := c.hubNS()
	cmds := [][]string{
		{"netns", "add", hub},
		{"-n", hub, "link", "add", "br0", "type", "bridge"},
		{"-n", hub, "link", "set", "br0", "up"},
		{"link", "add", c.hostIf(), "type", "veth", "peer", "name", "host", "netns", hub},
		{"addr", "add", c.HostIP + "/24", "dev", c.hostIf()},
		{"link", "set", c.hostIf(), "up"},
		{"-n", hub, "link", "set", "host", "master", "br0", "up"},
	}
	for _, n := range c.Nodes {
		cmds = append(cmds,
			[]string{"netns", "add", n.netns},
			[]string{"-n", n.netns, "link", "set", "lo", "up"},
			[]string{"link", "add", "eth0", "netns", n.netns, "type", "veth", "peer", "name", n.Name, "netns", hub},
			[]string{"-n", hub, "link", "set", n.Name, "master", "br0", "up"},
			[]string{"-n", n.netns, "addr", "add", n.Addr + "/24", "dev", "eth0"},
			[]string{"-n", n.netns, "link", "set", "eth0", "up"},
			// No default route: nothing outside the cluster's subnet is
			// reachable from a node, and trying fails at once.
		)
	}
	for _, a := range cmds {
		if err := ip(a...); err != nil {
			return err
		}
	}
	return nil
}
