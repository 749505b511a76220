// Package kubetest starts a real single-node Kubernetes cluster on this
// machine for tests: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler on loopback with certificates made at start, and a kubelet
// that runs real containers through its own containerd (its own root, state
// and socket, beside the host's Docker), runc and a CNI bridge, with a pause
// image built here. No registry or network is needed: images are built
// FROM scratch by LoadImage and loaded into the node's containerd.
//
// The binaries are built once per machine by scripts/kube-build (see
// docs/kubernetes-fixture.md). One cluster runs on a machine at a time:
// Start waits for a machine-wide lock, then removes what a killed earlier
// run left (processes, containers, mounts, the bridge, cgroups) before it
// starts anew. It needs root.
package kubetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// NodeName is the name of the cluster's one node.
	NodeName = "kubetest-node"
	// PodSubnet is the pods' addresses, on the bridge BridgeName: this
	// machine reaches a pod at its IP directly.
	PodSubnet = "10.213.0.0/24"
	// ServiceSubnet is the services' cluster IPs. Nothing routes them
	// (there is no kube-proxy): reach pods by their IPs.
	ServiceSubnet = "10.214.0.0/24"
	// PauseImage is the pod sandbox image, built at start.
	PauseImage = "moorage.test/pause:1"

	bridgeName = "kubetest0"
	// nodeIP is the pods' gateway on the bridge, and the node's
	// InternalIP: the kubelet serves on it and the apiserver reaches it
	// there for logs and exec (a kubelet told 127.0.0.1 registers no
	// address at all: "nodeIP can't be loopback address").
	nodeIP     = "10.213.0.1"
	cgroupRoot = "moorage-kubetest"
	dirName    = "moorage-kubetest"
)

// Cluster is a running cluster.
type Cluster struct {
	// Dir holds everything of the cluster: certificates, data, logs
	// (Dir/logs/NAME.log), sockets.
	Dir string
	// Kubeconfig is the path of a kubeconfig for a cluster admin
	// (system:masters), with the context "kubetest".
	Kubeconfig string
	// Config and Client are that admin's.
	Config *rest.Config
	Client kubernetes.Interface
	// ContainerdSocket is the node's containerd.
	ContainerdSocket string
	// BinDir holds the binaries the cluster runs.
	BinDir string
	// Registry is a plain-HTTP image registry (Debian's docker-registry)
	// on loopback, "127.0.0.1:PORT", that the node's containerd pulls
	// from and this machine's Docker pushes to (Docker trusts 127.0.0.0/8
	// without TLS); "" when docker-registry is not installed.
	Registry string
	// StartTime is how long Start took, from the lock to a Ready node.
	StartTime time.Duration

	lock  *os.File
	procs []*proc
	logf  func(format string, args ...any)
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// Start starts a cluster for the test t and stops it when t ends. The
// cluster needs root, the host packages named in scripts/test-deps and the
// binaries of scripts/kube-build (built here when missing: tens of minutes
// cold, see docs/kubernetes-fixture.md). Without root or packages the test
// is skipped, or fails under MOORAGE_REQUIRE_DOCKER=1.
func Start(ctx context.Context, t testing.TB) *Cluster {
	t.Helper()
	if err := Requirements(); err != nil {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but a Kubernetes cluster cannot run here: %v", err)
		}
		t.Skipf("no Kubernetes cluster here: %v", err)
	}
	// A cold build takes longer than a cluster's start may: it is bounded
	// by go test's -timeout alone.
	bin, err := Binaries(context.WithoutCancel(ctx), t.Logf)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	c, err := StartCluster(ctx, bin, t.Logf)
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				c.logTails(t.Logf, 40)
			}
			if err := c.Stop(); err != nil {
				t.Errorf("kubetest: stop: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return c
}

// Requirements says what this machine lacks to run a cluster, or nil.
func Requirements() error {
	if os.Geteuid() != 0 {
		return errors.New("the kubelet and containerd need root")
	}
	var missing []string
	for _, p := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap", "firewall"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s (Debian: containerd runc containernetworking-plugins iptables iproute2; scripts/test-deps installs them)", strings.Join(missing, ", "))
	}
	return nil
}

const cniBinDir = "/usr/lib/cni"

// Binaries returns the directory of the cluster's binaries: $MOORAGE_KUBE_BIN
// when set, else scripts/kube-build's cache, built first when missing.
func Binaries(ctx context.Context, logf func(string, ...any)) (string, error) {
	if d := os.Getenv("MOORAGE_KUBE_BIN"); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find the repository (runtime.Caller)")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "kube-build")
	if out, err := exec.CommandContext(ctx, script, "--check").Output(); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	logf("kubetest: building the cluster's binaries with %s (once per machine; tens of minutes cold)", script)
	start := time.Now()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", script, err, tail(stderr.String(), 40))
	}
	logf("kubetest: binaries built in %s", time.Since(start).Round(time.Second))
	return strings.TrimSpace(string(out)), nil
}

// StartCluster starts a cluster from the binaries in binDir. On error the
// returned Cluster (when not nil) still needs Stop.
func StartCluster(ctx context.Context, binDir string, logf func(string, ...any)) (*Cluster, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := filepath.Join(os.TempDir(), dirName)
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		logf("kubetest: waiting for another cluster on this machine to stop (lock %s)", lock.Name())
		waited := time.Now()
		if err := flockCtx(ctx, lock); err != nil {
			lock.Close()
			return nil, err
		}
		logf("kubetest: got the lock after %s", time.Since(waited).Round(time.Millisecond))
	}
	start := time.Now()
	if err := cleanup(dir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("removing an earlier cluster's leftovers: %w", err)
	}
	c := &Cluster{Dir: dir, BinDir: binDir, lock: lock, logf: logf}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if err := c.start(ctx); err != nil {
		return c, err
	}
	c.StartTime = time.Since(start)
	logf("kubetest: cluster ready in %s (node %s Ready)", c.StartTime.Round(time.Millisecond), NodeName)
	return c, nil
}

func flockCtx(ctx context.Context, f *os.File) error {
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) path(p ...string) string { return filepath.Join(append([]string{c.Dir}, p...)...) }

func (c *Cluster) start(ctx context.Context) error {
	for _, d := range []string{"logs", "run", "pki", "etcd", "cni/net.d", "cni/ipam", "containerd", "kubelet", "pod-logs", "images", "registry"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	if err := checkSubnetFree(PodSubnet); err != nil {
		return err
	}
	if err := makeBridge(); err != nil {
		return err
	}

	// Certificates and kubeconfigs.
	pki, err := newPKI(c.path("pki"))
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	serving, err := pki.issue("apiserver", "kube-apiserver", nil,
		[]string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.214.0.1"})
	if err != nil {
		return err
	}
	admin, err := pki.issue("admin", "kubetest-admin", []string{"system:masters"}, nil)
	if err != nil {
		return err
	}
	kubeletClient, err := pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil)
	if err != nil {
		return err
	}
	node, err := pki.issue("node", "system:node:"+NodeName, []string{"system:nodes"}, nil)
	if err != nil {
		return err
	}
	kubeletServing, err := pki.issue("kubelet", NodeName, nil, []string{nodeIP, "127.0.0.1", "localhost", NodeName})
	if err != nil {
		return err
	}
	saKey, saPub, err := pki.serviceAccountKey()
	if err != nil {
		return err
	}
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	etcdPort, etcdPeerPort, apiPort, kubeletPort := ports[0], ports[1], ports[2], ports[3]
	if err := c.startRegistry(ports[4]); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	c.Kubeconfig = c.path("admin.kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, server, pki.caPEM(), "kubetest-admin", admin); err != nil {
		return err
	}
	nodeKubeconfig := c.path("kubelet.kubeconfig")
	if err := writeKubeconfig(nodeKubeconfig, server, pki.caPEM(), "system:node:"+NodeName, node); err != nil {
		return err
	}

	// etcd.
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	if _, err := c.spawn("etcd", c.bin("etcd"), "-data-dir", c.path("etcd"),
		"-client-url", etcdURL, "-peer-url", "http://127.0.0.1:"+strconv.Itoa(etcdPeerPort)); err != nil {
		return err
	}
	// containerd starts beside the control plane: it does not need it.
	if err := c.startContainerd(); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "etcd healthy", func() error { return httpOK(ctx, nil, etcdURL+"/health") }); err != nil {
		return err
	}

	// The control plane.
	if _, err := c.spawn("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+c.path("pki", "apiserver-generated"),
		"--tls-cert-file="+serving.CertFile,
		"--tls-private-key-file="+serving.KeyFile,
		"--client-ca-file="+pki.caFile(),
		"--kubelet-client-certificate="+kubeletClient.CertFile,
		"--kubelet-client-key="+kubeletClient.KeyFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub,
		"--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range="+ServiceSubnet,
		"--authorization-mode=Node,RBAC",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--feature-gates="+featureGates,
	); err != nil {
		return err
	}
	adminTLS, err := tlsClient(pki.caPEM(), admin)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-apiserver ready", func() error { return httpOK(ctx, adminTLS, server+"/readyz") }); err != nil {
		return err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return err
	}
	c.Config.QPS, c.Config.Burst = 50, 100
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	if _, err := c.spawn("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+pki.caFile(),
		"--service-cluster-ip-range="+ServiceSubnet,
		"--use-service-account-credentials=false",
		"--profiling=false",
		"--feature-gates="+featureGates,
	); err != nil {
		return err
	}
	if _, err := c.spawn("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--profiling=false",
		"--feature-gates="+featureGates,
	); err != nil {
		return err
	}

	// The node: its sandbox image, the CNI network, the kubelet.
	if err := c.waitFor(ctx, "containerd serving", func() error {
		out, err := exec.CommandContext(ctx, "ctr", "--address", c.ContainerdSocket, "version").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := loadImage(ctx, c.ContainerdSocket, c.path("images"), PauseImage,
		[]ImageFile{{Path: "/pause", Source: c.bin("pause"), Mode: 0o755}},
		ImageConfig{Entrypoint: []string{"/pause"}}); err != nil {
		return err
	}
	// The kubelet wants its cgroup root to exist in every hierarchy.
	for _, root := range cgroupRoots() {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return fmt.Errorf("cgroup root: %w", err)
		}
	}
	if err := c.writeKubeletConfig(kubeletPort, pki.caFile(), kubeletServing); err != nil {
		return err
	}
	if _, err := c.spawn("kubelet", c.bin("kubelet"),
		"--config="+c.path("kubelet", "config.yaml"),
		"--kubeconfig="+nodeKubeconfig,
		"--root-dir="+c.path("kubelet", "root"),
		"--cert-dir="+c.path("kubelet", "pki"),
		"--volume-plugin-dir="+c.path("kubelet", "volume-plugins"),
		"--hostname-override="+NodeName,
		"--node-ip="+nodeIP,
		"--v=1",
	); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "node "+NodeName+" Ready and schedulable", c.nodeReady(ctx)); err != nil {
		return err
	}
	// Pods need their namespace's service account (made by the
	// controller manager): waiting for default's keeps the first test
	// from racing it.
	return c.waitFor(ctx, "service account default/default", func() error {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func (c *Cluster) nodeReady(ctx context.Context) func() error {
	return func() error {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status != corev1.ConditionTrue {
					return fmt.Errorf("node Ready=%s: %s: %s", cond.Status, cond.Reason, cond.Message)
				}
				ready = true
			}
		}
		if !ready {
			return errors.New("node has no Ready condition yet")
		}
		for _, taint := range n.Spec.Taints {
			if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
				return fmt.Errorf("node tainted %s:%s", taint.Key, taint.Effect)
			}
		}
		return nil
	}
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.BinDir, name) }

func (c *Cluster) startContainerd() error {
	c.ContainerdSocket = c.path("run", "containerd.sock")
	conf := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %[5]q
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    netns_mounts_under_state_dir = true
    # runc's write of the sandbox's oom_score_adj (-998) fails with EACCES
    # without CAP_SYS_RESOURCE in the bounding set (this machine's
    # CapBnd is 000001fffeffffff): clamp it to the current value instead.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %[6]q
      conf_dir = %[7]q
%[9]s  [plugins."io.containerd.internal.v1.opt"]
    path = %[8]q
`, c.path("containerd", "root"), c.path("containerd", "state"), c.ContainerdSocket, c.ContainerdSocket+".ttrpc",
		PauseImage, cniBinDir, c.path("cni", "net.d"), c.path("containerd", "opt"), c.registryMirror())
	confFile := c.path("containerd", "config.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return err
	}
	// The CNI network: a bridge with the pods' gateway on it (this
	// machine reaches pods directly), host-local addresses kept in Dir,
	// and the firewall plugin, which lets pods' traffic through the
	// FORWARD chain that Docker sets to DROP.
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "moorage-kubetest",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
`, bridgeName, PodSubnet, c.path("cni", "ipam"))
	if err := os.WriteFile(c.path("cni", "net.d", "10-moorage-kubetest.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	_, err := c.spawn("containerd", "containerd", "--config", confFile)
	return err
}

// splitStreams is the feature gate that lets a pod's log be read one
// stream at a time (stdout apart from stderr: PodLogOptions.Stream),
// alpha in 1.34, which the kubernetes runtime's logs use when the cluster
// has it.
const splitStreams = "PodLogsQuerySplitStreams"

// featureGates are the apiserver's (the kubelet's are in its config).
const featureGates = splitStreams + "=true"

// startRegistry starts Debian's docker-registry on 127.0.0.1:port, when
// it is installed, and sets Registry.
func (c *Cluster) startRegistry(port int) error {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		c.logf("kubetest: no docker-registry (scripts/test-deps installs it): the cluster has no registry")
		return nil
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conf := c.path("registry", "config.yml")
	if err := os.MkdirAll(c.path("registry", "data"), 0o755); err != nil {
		return err
	}
	yml := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %q}\n", c.path("registry", "data"), addr)
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		return err
	}
	if _, err := c.spawn("registry", bin, "serve", conf); err != nil {
		return err
	}
	c.Registry = addr
	return nil
}

// registryMirror is containerd's configuration of Registry: plain HTTP.
func (c *Cluster) registryMirror() string {
	if c.Registry == "" {
		return ""
	}
	return fmt.Sprintf("    [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n      endpoint = [%q]\n", c.Registry, "http://"+c.Registry)
}

func (c *Cluster) writeKubeletConfig(port int, caFile string, serving keyPair) error {
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzPort: 0
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %q
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: %q
cgroupDriver: cgroupfs
cgroupRoot: /%s
cgroupsPerQOS: true
failSwapOn: false
failCgroupV1: false
podLogsDir: %q
featureGates:
  %s: true
resolvConf: /etc/resolv.conf
registerNode: true
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
`, nodeIP, port, serving.CertFile, serving.KeyFile, caFile, "unix://"+c.ContainerdSocket, cgroupRoot, c.path("pod-logs"), splitStreams)
	return os.WriteFile(c.path("kubelet", "config.yaml"), []byte(conf), 0o644)
}

// spawn starts a process with its output in Dir/logs/NAME.log and its pid
// in Dir/run/NAME.pid (so that a later Start finds it if this one is
// killed). It dies with this process (SIGKILL on parent death).
func (c *Cluster) spawn(name string, argv ...string) (*proc, error) {
	logFile := c.path("logs", name+".log")
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	if err := os.WriteFile(c.path("run", name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return p, err
	}
	return p, nil
}

// waitFor polls check until it returns nil, ctx ends, or one of the
// cluster's processes exits (the error then has the end of its log).
func (c *Cluster) waitFor(ctx context.Context, what string, check func() error) error {
	start := time.Now()
	var last error
	for {
		if last = check(); last == nil {
			c.logf("kubetest: %s after %s", what, time.Since(start).Round(time.Millisecond))
			return nil
		}
		for _, p := range c.procs {
			select {
			case <-p.done:
				return fmt.Errorf("waiting for %s: %s exited (%v); end of %s:\n%s", what, p.name, p.err, p.log, tailFile(p.log, 30))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops the cluster and removes everything it made on the machine.
func (c *Cluster) Stop() error {
	if c.lock == nil {
		return nil
	}
	err := cleanup(c.Dir)
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
	c.lock.Close()
	c.lock = nil
	return err
}

// Logs returns the end of a component's log (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, kubelet).
func (c *Cluster) Logs(name string, lines int) string {
	return tailFile(c.path("logs", name+".log"), lines)
}

func (c *Cluster) logTails(logf func(string, ...any), lines int) {
	for _, p := range c.procs {
		logf("kubetest: end of %s:\n%s", p.log, tailFile(p.log, lines))
	}
}

func writeKubeconfig(file, server string, caPEM []byte, user string, kp keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: user}
	cfg.CurrentContext = "kubetest"
	return clientcmd.WriteToFile(*cfg, file)
}

func tlsClient(caPEM []byte, kp keyPair) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("bad CA PEM")
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}, nil
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// makeBridge makes the CNI bridge with the pods' gateway, nodeIP, on it
// before the kubelet starts, so that the kubelet can take that address as
// the node's. The bridge plugin adopts a bridge that has its gateway
// address already.
func makeBridge() error {
	for _, args := range [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", nodeIP + "/24", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// checkSubnetFree fails when an interface of this machine already has an
// address in subnet (another network would shadow the pods').
func checkSubnetFree(subnet string) error {
	_, n, err := net.ParseCIDR(subnet)
	if err != nil {
		return err
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && n.Contains(ipn.IP) {
			return fmt.Errorf("the pod subnet %s is taken on this machine (%s)", subnet, ipn)
		}
	}
	return nil
}

func tailFile(file string, lines int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	return tail(string(b), lines)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Get fetches url (a pod's, over the bridge) within 10 s and returns its
// body; a status other than 200 is an error that carries the body.
func Get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}
