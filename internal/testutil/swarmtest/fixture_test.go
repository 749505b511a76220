package swarmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// TestSwarmShared runs the facts that leave the cluster whole on one
// three-node swarm, one after the other (a bring-up and an image load
// cost seconds each on a busy machine).
func TestSwarmShared(t *testing.T) {
	t.Parallel()
	c, img := startWithImage(t, Options{})
	// One after the other, never t.Parallel: parallel subtests wait for a
	// slot of -parallel while this test holds the cluster, and the other
	// tests of the package may fill every such slot waiting for a cluster
	// (Running): a deadlock, seen in a full run.
	for _, sub := range []struct {
		name string
		f    func(*testing.T, *Cluster, *Image)
	}{
		{"Fixture", func(t *testing.T, c *Cluster, _ *Image) { testFixture(t, c) }},
		{"ReleaseJob", testReleaseJob},
		{"WebReach", testWebReach},
		{"ImageByID", testImageByID}, // last: it moves node2's tag elsewhere
	} {
		t.Run(sub.name, func(t *testing.T) { sub.f(t, c, img) })
	}
}

// testFixture checks that the nodes are what they say: one manager and
// two workers, Ready, each with its own hostname and address; and loads an
// image on every node, with the same image ID everywhere.
func testFixture(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	img, err := BuildImage(ImageOptions{Ref: "moorage-swarmtest:fixture", Pad: 1})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	figure(t, "bring-up %s (network %s, dockerd %s, init %s, join %s, ready %s); a %d-byte image loaded on 3 nodes at once in %s, ID %.19s everywhere",
		c.Timings["total"].Round(time.Millisecond), c.Timings["network"].Round(time.Millisecond), c.Timings["dockerd"].Round(time.Millisecond),
		c.Timings["init"].Round(time.Millisecond), c.Timings["join"].Round(time.Millisecond), c.Timings["ready"].Round(time.Millisecond),
		len(img.Tar), d.Round(time.Millisecond), img.ID)
}

// TestSwarmFixtureCleansKilledRun: a test process killed with its cluster
// up leaves network namespaces, files and cgroups behind; the next Start
// cleans them (its slot's lock died with the process).
func TestSwarmFixtureCleansKilledRun(t *testing.T) {
	if f := os.Getenv("SWARMTEST_CHILD"); f != "" {
		// The run to kill: a cluster, its slot told, then nothing.
		c := Start(t, Options{Workers: -1})
		os.WriteFile(f, []byte(strconv.Itoa(c.Slot)+"\n"), 0o644)
		select {}
	}
	t.Parallel()
	Require(t)
	slotFile := filepath.Join(t.TempDir(), "slot")
	// The child may wait for a slot while other tests' clusters are up
	// (Running), as long as this test may.
	wait := slotWait
	if dl, ok := t.Deadline(); ok {
		wait = time.Until(dl) - time.Minute
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSwarmFixtureCleansKilledRun$", "-test.v", "-test.timeout="+(wait+time.Minute).String())
	cmd.Env = append(os.Environ(), "SWARMTEST_CHILD="+slotFile)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var slot int
	if err := Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		b, err := os.ReadFile(slotFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false, nil
		}
		slot, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return true, err
	}); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child never brought its cluster up: %v\n%s", err, out.String())
	}
	cmd.Process.Kill()
	cmd.Wait()
	left := &Cluster{Slot: slot, dir: filepath.Join(BaseDir, fmt.Sprintf("s%d", slot))}
	if !left.dirty() {
		t.Fatalf("the killed run left nothing in slot %d: the test proves nothing", slot)
	}
	c := Start(t, Options{Workers: -1})
	if c.Slot != slot && left.dirty() {
		t.Fatalf("slot %d of the killed run still holds leftovers after Start (which took slot %d)", slot, c.Slot)
	}
	if pids := pidsUnder(left.dir); c.Slot != slot && len(pids) > 0 {
		t.Fatalf("processes of the killed run survive: %v", pids)
	}
}
