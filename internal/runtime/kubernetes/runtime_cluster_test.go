package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/testutil/kubetest"
)

func rtLogger() *slog.Logger {
	if os.Getenv("MOORAGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// rtPrefix gives each data directory its own prefix, the same each time
// (a server restart opens the same directory).
func rtPrefix(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return "mk" + hex.EncodeToString(h[:4])
}

// rtRequireDocker skips the test when no Docker Engine answers (the
// builder), or fails it when MOORAGE_REQUIRE_DOCKER=1 (CI).
func rtRequireDocker(t *testing.T) {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		sock = strings.TrimPrefix(h, "unix://")
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but no Docker Engine answers at %s: %v", sock, err)
	}
	t.Skipf("no Docker Engine at %s (%v) for the image builder", sock, err)
}

// TestKubernetesRuntimeConformance runs the runtime conformance suite on
// a real single-node cluster (kubetest), with images built by this
// machine's Docker and pulled by the node from the fixture's registry.
func TestKubernetesRuntimeConformance(t *testing.T) {
	rtRequireDocker(t)
	ctx := context.Background()
	c := kubetest.Shared(t) // the package's one cluster (cluster_test.go)
	if c.Registry == "" {
		t.Fatal("the cluster has no registry: install docker-registry (scripts/test-deps)")
	}
	volumes := t.TempDir()
	var mu sync.Mutex
	prefixes := map[string]bool{}
	t.Cleanup(func() {
		// The builder's images (labelled with its prefix).
		for p := range prefixes {
			out, _ := exec.Command("docker", "images", "-q", "--filter", "label=moorage.prefix="+p+"-kube").Output()
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				exec.Command("docker", append([]string{"rmi", "-f"}, ids...)...).Run()
			}
		}
	})
	open := func(t *testing.T, dir string) *Runtime {
		t.Helper()
		nctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		p := rtPrefix(dir)
		mu.Lock()
		prefixes[p] = true
		mu.Unlock()
		r, err := New(nctx, RuntimeOptions{
			DataDir:   dir,
			Logger:    rtLogger(),
			Prefix:    p,
			Config:    c.Config,
			Registry:  c.Registry,
			VolumeDir: volumes,
		})
		if err != nil {
			t.Fatalf("kubernetes runtime: %v", err)
		}
		return r
	}
	runtimetest.Run(t, runtimetest.Harness{
		Name:    Name,
		New:     func(t *testing.T, dir string) runtime.Runtime { return open(t, dir) },
		Port:    8080,
		Lines:   true,
		Timeout: 2 * time.Minute,
		Skip: map[string]string{
			"Pause":      "Kubernetes cannot freeze a pod: Pause and Resume return ErrNotSupported",
			"StopSignal": "the stop signal is the container's lifecycle.stopSignal, behind the ContainerStopSignals feature gate (alpha in 1.34) and unsupported by containerd 1.6: pods get SIGTERM (or the image's STOPSIGNAL)",
			"Exec":       "the Kubernetes exec API sets no extra environment variables (ExecSpec.Env), which this test needs: KubernetesExec tests the rest",
		},
		Extra: map[string]func(t *testing.T, dir string){
			"KubernetesExec":      func(t *testing.T, dir string) { testKubernetesExec(t, open, dir) },
			"KubernetesSingleton": func(t *testing.T, dir string) { testKubernetesSingleton(t, c.Client, open, dir) },
		},
	})
}
