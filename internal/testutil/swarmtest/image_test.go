package swarmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

func sleeper(name, image string, labels map[string]string) swarm.ServiceSpec {
	grace := 100 * time.Millisecond
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Command: []string{"/bin/sleep", "3600"}, StopGracePeriod: &grace},
		},
		Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
	}
}

// imagesRun maps each node's name to the image ID its running task of the
// service runs, read from the node's own engine.
func imagesRun(t *testing.T, ctx context.Context, c *Cluster, ts []swarm.Task) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tk := range running(ts) {
		n := c.Node(tk.NodeID)
		ct, err := n.Client.ContainerInspect(ctx, tk.Status.ContainerStatus.ContainerID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("%s: inspect task container: %v", n.Name, err)
		}
		out[n.Name] = ct.Container.Image
	}
	return out
}

// testImageByID (TestSwarmShared/ImageByID): what pins a release's image to the same bytes on
// every node without a registry. An image shipped with `docker save`/load
// has the same image ID on every node but no repo digest; by tag, Swarm
// warns that it "could not be accessed on a registry to record its digest"
// and each node runs whatever its tag points to (here: different bytes on
// node2); by image ID ("sha256:…") every node runs exactly that image, no
// pull is attempted, and a node without it rejects the task.
func testImageByID(t *testing.T, c *Cluster, imgA *Image) {
	ctx := ctxT(t, 4*time.Minute)
	cli := c.Client()

	got, err := cli.ImageInspect(ctx, imgA.Ref)
	if err != nil {
		t.Fatal(err)
	}
	figure(t, "loaded image: ID %s, RepoDigests %v (a repo digest exists only for images pushed to or pulled from a registry)", got.ID, got.RepoDigests)

	// Another image under the same tag on node2 only.
	imgB, err := BuildImage(ImageOptions{Ref: imgA.Ref, Pad: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[2].LoadImage(ctx, imgB); err != nil {
		t.Fatal(err)
	}

	// By tag, with the client resolving the digest as `docker service
	// create` does.
	begin := time.Now()
	res, err := cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: sleeper("bytag", imgA.Ref, nil), QueryRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "could not be accessed on a registry to record") {
		t.Fatalf("warnings %q, want the digest warning", res.Warnings)
	}
	ts := waitTasks(t, ctx, cli, res.ID, "3 tasks by tag run", func(ts []swarm.Task) bool { return len(running(ts)) == 3 })
	tookTag := time.Since(begin)
	ran := imagesRun(t, ctx, c, ts)
	if ran["node0"] != imgA.ID || ran["node2"] != imgB.ID {
		t.Fatalf("by tag: images run %v, want node0 %s and node2 %s", ran, imgA.ID, imgB.ID)
	}
	svc, _ := cli.ServiceInspect(ctx, res.ID, client.ServiceInspectOptions{})
	figure(t, "by tag %q: warning %q; spec image stays %q; node0 runs %.19s, node2 runs %.19s (different bytes); 3 tasks running after %s",
		imgA.Ref, strings.ReplaceAll(res.Warnings[0], "\n", " "), svc.Service.Spec.TaskTemplate.ContainerSpec.Image, ran["node0"], ran["node2"], tookTag.Round(time.Millisecond))

	// By image ID: the same bytes everywhere, no pull attempted.
	begin = time.Now()
	byID := createService(t, ctx, cli, sleeper("byid", imgA.ID, nil))
	ts = waitTasks(t, ctx, cli, byID, "3 tasks by ID run", func(ts []swarm.Task) bool { return len(running(ts)) == 3 })
	tookID := time.Since(begin)
	ran = imagesRun(t, ctx, c, ts)
	for _, n := range c.Nodes {
		if ran[n.Name] != imgA.ID {
			t.Fatalf("by ID: %s runs %s, want %s", n.Name, ran[n.Name], imgA.ID)
		}
	}
	figure(t, "by image ID %.19s…: every node runs it (node2 too, whose tag points elsewhere); 3 tasks running after %s (by tag: %s, which includes a failed pull attempt per node)",
		imgA.ID, tookID.Round(time.Millisecond), tookTag.Round(time.Millisecond))

	// name@<image ID>: a canonical reference whose digest is the config
	// digest, not a manifest digest.
	byName := createService(t, ctx, cli, sleeper("bynamedigest", "moorage-swarmtest@"+imgA.ID, nil))
	ts = waitTasks(t, ctx, cli, byName, "name@id settles", func(ts []swarm.Task) bool {
		return len(running(ts)) == 3 || (len(ts) > 0 && ts[0].Status.Err != "")
	})
	if len(running(ts)) == 3 {
		figure(t, "by name@<image ID>: runs on every node")
	} else {
		figure(t, "by name@<image ID>: not run: %q", ts[0].Status.Err)
	}

	// By ID, on a node that lacks the image: rejected, never another image.
	imgC, err := BuildImage(ImageOptions{Ref: "moorage-swarmtest:c", Pad: 2000})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes[:2] {
		if err := n.LoadImage(ctx, imgC); err != nil {
			t.Fatal(err)
		}
	}
	missing := createService(t, ctx, cli, sleeper("missing", imgC.ID, nil))
	var failedOn string
	ts = waitTasks(t, ctx, cli, missing, "node2's task fails for the missing image", func(ts []swarm.Task) bool {
		for _, tk := range ts {
			if tk.NodeID == c.Nodes[2].ID && tk.Status.Err != "" {
				failedOn = fmt.Sprintf("%s: %s", tk.Status.State, tk.Status.Err)
				return len(running(ts)) == 2
			}
		}
		return false
	})
	for _, id := range []string{res.ID, byID, byName, missing} {
		cli.ServiceRemove(ctx, id, client.ServiceRemoveOptions{})
	}
	figure(t, "by image ID on a node without it: node2's task %s (node0 and node1 run): ship the image to every eligible node before creating the service", failedOn)
}

// TestSwarmImageRegistry: Debian's docker-registry (distribution 2.8) on
// the host; the host engine pushes to it on 127.0.0.1 (insecure by default
// for loopback), the nodes pull from the host's bridge address (their own
// dockerds have --insecure-registry for it). Compared with loading the same
// ~10 MB image on every node; and the service pins the manifest digest.
func TestSwarmImageRegistry(t *testing.T) {
	t.Parallel()
	Require(t)
	registryBin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatal("docker-registry is not installed (Debian package docker-registry; scripts/test-deps installs it)")
		}
		t.Skip("docker-registry is not installed (Debian package docker-registry)")
	}
	host, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx := ctxT(t, 4*time.Minute)
	if _, err := host.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("the host's Docker Engine does not answer: %v", err)
		}
		t.Skipf("the host's Docker Engine does not answer: %v", err)
	}

	// The registry's port, known before the nodes start (they need it in
	// --insecure-registry).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// The node-side address: the slot is not known yet, but every slot's
	// host address is 10.231.S.1; allow them all.
	var insecure []string
	for s := range MaxSlots {
		insecure = append(insecure, fmt.Sprintf("10.231.%d.1:%d", s, port))
	}
	c := Start(t, Options{InsecureRegistries: insecure})
	// The deadline starts once the cluster is up: Start may have waited
	// minutes for a free slot (the e2e swarm lanes hold both in a full run).
	ctx = ctxT(t, 4*time.Minute)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:%d
`, filepath.Join(dir, "data"), port)), 0o644)
	reg := exec.Command(registryBin, "serve", cfg)
	reg.Stdout, reg.Stderr = io.Discard, io.Discard
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Process.Kill(); reg.Wait() })
	if err := Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v2/", port))
		if err != nil {
			return false, nil
		}
		res.Body.Close()
		return res.StatusCode == 200, nil
	}); err != nil {
		t.Fatalf("registry never answered: %v", err)
	}
	// The nodes reach it on the host's bridge address.
	forward(t, fmt.Sprintf("%s:%d", c.HostIP, port), fmt.Sprintf("127.0.0.1:%d", port))

	const size = 10 << 20
	local := fmt.Sprintf("127.0.0.1:%d/moorage-swarmtest:big", port)
	img, err := BuildImage(ImageOptions{Ref: local, Pad: size})
	if err != nil {
		t.Fatal(err)
	}

	// 1. Ship by loading on every node.
	loadTook, err := c.LoadImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if _, err := n.Client.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}

	// 2. Through the registry: the host engine loads and pushes, the
	// nodes pull by digest.
	begin := time.Now()
	if err := loadOn(ctx, host, img); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		host.ImageRemove(context.Background(), img.ID, client.ImageRemoveOptions{Force: true})
	})
	hostLoad := time.Since(begin)
	begin = time.Now()
	push, err := host.ImagePush(ctx, local, client.ImagePushOptions{RegistryAuth: "e30="})
	if err != nil {
		t.Fatal(err)
	}
	digest, err := pushDigest(push)
	push.Close()
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	pushTook := time.Since(begin)
	remote := fmt.Sprintf("%s:%d/moorage-swarmtest", c.HostIP, port)
	begin = time.Now()
	err = c.each(func(n *Node) error {
		r, err := n.Client.ImagePull(ctx, remote+"@"+digest, client.ImagePullOptions{})
		if err != nil {
			return fmt.Errorf("%s: pull: %w", n.Name, err)
		}
		defer r.Close()
		if err := jsonStreamError(r); err != nil {
			return fmt.Errorf("%s: pull: %w", n.Name, err)
		}
		got, err := n.Client.ImageInspect(ctx, remote+"@"+digest)
		if err != nil {
			return err
		}
		if got.ID != img.ID {
			return fmt.Errorf("%s: pulled %s, want image %s", n.Name, got.ID, img.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pullTook := time.Since(begin)
	figure(t, "%d MB image: load on 3 nodes at once %s; registry: host engine load %s + push %s + pull on 3 nodes at once %s (manifest digest %.19s…, same image ID everywhere)",
		size>>20, loadTook.Round(time.Millisecond), hostLoad.Round(time.Millisecond), pushTook.Round(time.Millisecond), pullTook.Round(time.Millisecond), digest)

	// The client pins a tag to its manifest digest when the registry
	// answers: no warning, and the spec names the digest.
	tagged := remote + ":big"
	res, err := c.Client().ServiceCreate(ctx, client.ServiceCreateOptions{Spec: sleeper("fromregistry", tagged, nil), QueryRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client().ServiceInspect(ctx, res.ID, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pinned := svc.Service.Spec.TaskTemplate.ContainerSpec.Image
	if len(res.Warnings) != 0 || pinned != tagged+"@"+digest {
		t.Fatalf("service from registry: warnings %q, image %q, want %q", res.Warnings, pinned, tagged+"@"+digest)
	}
	ts := waitTasks(t, ctx, c.Client(), res.ID, "3 tasks from the registry run", func(ts []swarm.Task) bool { return len(running(ts)) == 3 })
	for n, id := range imagesRun(t, ctx, c, ts) {
		if id != img.ID {
			t.Fatalf("%s runs %s, want %s", n, id, img.ID)
		}
	}
	figure(t, "QueryRegistry with a registry that answers: no warning, spec image %q", pinned)
}

// loadOn loads img into the engine cli talks to.
func loadOn(ctx context.Context, cli *client.Client, img *Image) error {
	res, err := cli.ImageLoad(ctx, strings.NewReader(string(img.Tar)), client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer res.Close()
	return jsonStreamError(res)
}

// pushDigest reads a push's JSON stream and returns the manifest digest it
// reports.
func pushDigest(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	var digest string
	for {
		var m struct {
			Error string `json:"error"`
			Aux   struct {
				Digest string `json:"Digest"`
			} `json:"aux"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
		if m.Error != "" {
			return "", fmt.Errorf("%s", m.Error)
		}
		if m.Aux.Digest != "" {
			digest = m.Aux.Digest
		}
	}
	if digest == "" {
		return "", fmt.Errorf("no digest in the push's output")
	}
	return digest, nil
}

// forward relays TCP connections from listen to target until the test
// ends.
func forward(t *testing.T, listen, target string) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, conn)
				io.Copy(conn, up)
			}()
		}
	}()
}
