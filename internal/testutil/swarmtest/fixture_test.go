package swarmtest

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// TestSwarmFixture brings up the three-node swarm, loads an image on every
// node, and checks that the nodes are what they say: one manager and two
// workers, Ready, each with its own hostname and address, the same image
// ID everywhere.
func TestSwarmFixture(t *testing.T) {
	c := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := c.Client().NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("%d nodes, want 3", len(nodes.Items))
	}
	for _, sn := range nodes.Items {
		n := c.Node(sn.ID)
		if n == nil {
			t.Fatalf("node %s (%s) is none of the fixture's", sn.ID, sn.Description.Hostname)
		}
		if sn.Description.Hostname != n.Name || sn.Status.Addr != n.Addr || sn.Status.State != swarm.NodeStateReady {
			t.Errorf("node %s: hostname %q addr %q state %q, want %q %q ready", sn.ID, sn.Description.Hostname, sn.Status.Addr, sn.Status.State, n.Name, n.Addr)
		}
		wantRole := swarm.NodeRoleWorker
		if n == c.Manager() {
			wantRole = swarm.NodeRoleManager
		}
		if sn.Spec.Role != wantRole {
			t.Errorf("%s: role %s, want %s", n.Name, sn.Spec.Role, wantRole)
		}
	}
	img, err := BuildImage(ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s (%d bytes) loaded on 3 nodes in %s", img.ID[:19], len(img.Tar), d)
}
