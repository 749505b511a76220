package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

func testLogger() *slog.Logger {
	if os.Getenv("MOORAGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// prefixFor gives each data directory its own prefix, the same each time
// (a server restart opens the same directory).
func prefixFor(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return "msw" + hex.EncodeToString(h[:4])
}

// nodesOf maps every node's hostname to its Docker API socket.
func nodesOf(c *swarmtest.Cluster) map[string]string {
	m := map[string]string{}
	for _, n := range c.Nodes {
		m[n.Name] = "unix://" + n.Socket
	}
	return m
}

func openOn(t *testing.T, c *swarmtest.Cluster, dir string) *Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := New(ctx, Options{
		DataDir: dir,
		Logger:  testLogger(),
		Prefix:  prefixFor(dir),
		Host:    "unix://" + c.Manager().Socket,
		Nodes:   nodesOf(c),
	})
	if err != nil {
		t.Fatalf("swarm runtime: %v", err)
	}
	return r
}

// TestSwarmConformance runs the runtime conformance suite on a real
// three-node swarm (one manager, two workers, each a dockerd in its own
// network namespace).
func TestSwarmConformance(t *testing.T) {
	t.Parallel()
	c := swarmtest.Start(t, swarmtest.Options{HeartbeatPeriod: time.Second})
	shared := t.TempDir()
	runtimetest.Run(t, runtimetest.Harness{
		Name: Name,
		New: func(t *testing.T, dir string) runtime.Runtime {
			return openOn(t, c, dir)
		},
		Port:  8080,
		Moves: true,
		Lines: true,
		// The nodes share this machine's filesystem: a local volume bound
		// to one directory is the same storage on every node, as an NFS
		// volume would be on real machines.
		SharedVolume: func(t *testing.T, app, name string) (string, map[string]string) {
			dir := filepath.Join(shared, app, name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o777)
			return "local", map[string]string{"type": "none", "o": "bind", "device": dir}
		},
		Timeout: 2 * time.Minute,
		Extra: map[string]func(t *testing.T, dir string){
			"Files":       func(t *testing.T, dir string) { testFiles(t, c, dir) },
			"VolumeOwner": func(t *testing.T, dir string) { testVolumeOwner(t, c, dir) },
		},
	})
	// The interactive one-offs (RunTTY: containers on the manager) are
	// gone, the one whose client went away too.
	cli, err := client.New(client.WithHost("unix://" + c.Manager().Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", containers.LabelPrefix)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cs.Items {
		if strings.HasPrefix(ct.Labels[containers.LabelPrefix], runPrefix) {
			t.Errorf("an interactive one-off's container is left on the manager: %v (%s)", ct.Names, ct.State)
		}
	}
}
