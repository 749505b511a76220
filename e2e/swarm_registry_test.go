package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// With --swarm-registry, release images go through a real registry
// (Debian's docker-registry, distribution 2.8) rather than being shipped
// to each node: the manager pushes, every service names the image by its
// digest, and the workers pull those exact bytes. A rollback runs the old
// digest again.
func swarmRegistry(t *testing.T) {
	c := swarmtest.Start(t, swarmtest.Options{HeartbeatPeriod: time.Second, InsecureRegistries: []string{"10.231.0.0/16"}})
	reg := startRegistry(t, c.HostIP)
	s := startServerOn(t, "swarm", c, []string{"--swarm-registry", reg + "/team"})
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "one")
	out := s.deploy(app, 0)
	if !strings.Contains(out, "pushed image") || !strings.Contains(out, reg+"/team/"+s.prefix+"-hello@sha256:") {
		t.Fatalf("the deploy does not say it pushed to the registry:\n%s", out)
	}
	s.waitBody("/", "message=one")
	first := serviceImages(t, c, "v1")
	for svc, img := range first {
		if !strings.HasPrefix(img, reg+"/team/"+s.prefix+"-hello@sha256:") {
			t.Fatalf("service %s runs %q, not the release's digest in the registry", svc, img)
		}
	}
	// Every worker that runs a task of the app pulled the image from the
	// registry (nothing was shipped): it has the digest.
	onWorkers := 0
	for _, in := range s.ps("hello").Instances {
		n := c.Node(in.Node)
		if n == nil || n == c.Manager() {
			continue
		}
		onWorkers++
		if !hasDigest(t, n, reg+"/team/"+s.prefix+"-hello@") {
			t.Fatalf("%s runs %s but has no image from the registry", n.Name, in.ID)
		}
	}
	if onWorkers == 0 {
		t.Fatal("no instance runs on a worker: nothing shows that the workers pulled from the registry")
	}

	setMessage(t, app, "two")
	s.deploy(app, 0)
	s.waitBody("/", "message=two")
	if s.mustRun("rollback", "-a", "hello") == "" {
		t.Fatal("rollback printed nothing")
	}
	s.waitBody("/", "message=one")
	back := serviceImages(t, c, s.ps("hello").Active)
	for svc, img := range back {
		if want := first[svc]; want != "" && img != want {
			t.Fatalf("after the rollback %s runs %s, want v1's %s", svc, img, want)
		}
	}
	checkMigrations(t, s, "hello", 2)
	checkSingleton(t, s, "hello")
}

// hasDigest reports whether node n has an image pulled as repo@digest,
// where prefix is "repo@".
func hasDigest(t *testing.T, n *swarmtest.Node, prefix string) bool {
	t.Helper()
	imgs, err := n.Client.ImageList(context.Background(), client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range imgs.Items {
		for _, d := range im.RepoDigests {
			if strings.HasPrefix(d, prefix) {
				return true
			}
		}
	}
	return false
}

// serviceImages maps each running moorage service of release rel on the
// swarm (by its moorage.instance label) to the image its tasks run (the
// web of the release before stays warm: not its).
func serviceImages(t *testing.T, c *swarmtest.Cluster, rel string) map[string]string {
	t.Helper()
	res, err := c.Client().ServiceList(context.Background(), client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, svc := range res.Items {
		id := svc.Spec.Labels["moorage.instance"]
		if id == "" || svc.Spec.Labels["moorage.release"] != rel || svc.Spec.Mode.Replicated == nil || svc.Spec.Mode.Replicated.Replicas == nil || *svc.Spec.Mode.Replicated.Replicas == 0 {
			continue
		}
		// By service and index: releases differ in the instance's name.
		key := svc.Spec.Labels["moorage.service"] + "-" + svc.Spec.Labels["moorage.index"]
		out[key] = svc.Spec.TaskTemplate.ContainerSpec.Image
	}
	return out
}

// startRegistry runs Debian's docker-registry on the cluster's bridge
// address, where the nodes reach it, and returns its HOST:PORT.
func startRegistry(t *testing.T, host string) string {
	t.Helper()
	return startRegistryConf(t, host, "")
}

// startRegistryConf is startRegistry with more of the registry's
// configuration (YAML lines at the top level: auth).
func startRegistryConf(t *testing.T, host, extra string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry (Debian's package docker-registry) is needed: %v; scripts/test-deps installs it", err)
	}
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %q}\n%s", filepath.Join(dir, "data"), addr, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", conf)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 30*time.Second, "the registry to answer", func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return addr
}
