package e2e

import (
	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// swarmArgs are the `moorage server` flags that put a server's swarm
// runtime on the cluster c: its manager's API and every node's, as a user
// would give them (docs/runtimes.md#swarm).
func swarmArgs(c *swarmtest.Cluster) []string {
	args := []string{"--swarm-host", "unix://" + c.Manager().Socket}
	for _, n := range c.Nodes {
		args = append(args, "--swarm-node", n.Name+"="+"unix://"+n.Socket)
	}
	return args
}
