package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// swarmArgs are the `moorage server` flags that put a server's swarm
// runtime on the cluster c: its manager's API and every node's, as a user
// would give them (docs/runtimes.md#swarm). The sockets are reached
// through links of the test's own, so that the server's command line does
// not name a node's directory (swarmtest takes any process that does for
// one of the node's, which a power cut must end).
func swarmArgs(t testing.TB, c *swarmtest.Cluster) []string {
	dir := t.TempDir()
	sock := func(n *swarmtest.Node) string {
		link := filepath.Join(dir, n.Name+".sock")
		if err := os.Symlink(n.Socket, link); err != nil {
			t.Fatal(err)
		}
		return "unix://" + link
	}
	args := []string{"--swarm-host", sock(c.Manager())}
	for _, n := range c.Workers() {
		args = append(args, "--swarm-node", n.Name+"="+sock(n))
	}
	return args
}
