package swarm

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// testVolumeOwner (TestSwarmConformance's "VolumeOwner"): an accessory
// whose image runs as a non-root user (the test app's USER 65534) and
// mounts a fresh volume where the image has no directory can write to
// it, on the node it is pinned to, as on the docker runtime: the volume's
// root is handed to that user before the service is created. Restarted
// (a new service, the volume with content), it finds its file.
func testVolumeOwner(t *testing.T, c *swarmtest.Cluster, dir string) {
	r := openOn(t, c, dir)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app := "owner" + prefixFor(dir)[3:9]
	sp := &spec.Spec{App: app, Runtime: Name,
		Build:    &spec.Build{Command: runtimetest.BuildCommand, Dockerfile: "Dockerfile", Workdir: spec.DefaultWorkdir},
		Services: map[string]*spec.Service{"web": {Name: "web"}}}
	ctxDir := t.TempDir()
	if err := runtimetest.WriteApp(ctxDir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a, err := r.Build(ctx, runtime.BuildRequest{App: app, Release: "v1", ContextDir: ctxDir, Spec: sp, Output: &out})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	defer r.RemoveArtifact(context.WithoutCancel(ctx), a)
	acc := runtime.InstanceSpec{App: app, Service: "store", Kind: runtime.KindAccessory, Image: a.Ref, Artifact: a,
		Command: []string{"/app/app", "serve"}, Port: 8080, StopTimeout: 5 * time.Second,
		Mounts: []runtime.Mount{{Name: "store", Target: "/data"}}}
	exec := func(cmd ...string) (int, string) {
		t.Helper()
		var out bytes.Buffer
		code, err := r.Exec(ctx, acc.ID(), runtime.ExecSpec{Cmd: cmd, Stdout: &out, Stderr: &out})
		if err != nil {
			t.Fatalf("exec %v: %v", cmd, err)
		}
		return code, out.String()
	}
	in, err := r.Start(ctx, acc)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if code, got := exec("/app/app", "write", "/data/row", "kept"); code != 0 {
		t.Fatalf("the accessory (uid 65534) cannot write to its fresh volume on %s: %d %s", in.Node, code, got)
	}
	if err := r.Remove(ctx, acc.ID()); err != nil {
		t.Fatal(err)
	}
	in2, err := r.Start(ctx, acc)
	if err != nil {
		t.Fatalf("start again: %v", err)
	}
	if in2.Node != in.Node {
		t.Fatalf("the accessory moved from %s to %s", in.Node, in2.Node)
	}
	if code, got := exec("/app/app", "cat", "/data/row"); code != 0 || strings.TrimSpace(got) != "kept" {
		t.Errorf("after a restart the accessory reads %d %q", code, got)
	}
	if err := r.Remove(ctx, acc.ID()); err != nil {
		t.Fatal(err)
	}
}
