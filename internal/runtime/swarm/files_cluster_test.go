package swarm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// testFiles (TestSwarmConformance's "Files"): a service's "./custom" of
// the upload is on whichever node runs a task, as Swarm configs: files in
// subdirectories with their modes, empty ones, empty directories,
// read-only; a one-off (a release task) has it too. A release that
// changes one file makes one config; the configs of a pruned release go
// once no service uses them, and those of the last once it is pruned. A
// file too big for a config fails the build before the image is built.
func testFiles(t *testing.T, c *swarmtest.Cluster, dir string) {
	r := openOn(t, c, dir)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app := "files" + prefixFor(dir)[3:9]
	sp := &spec.Spec{App: app, Runtime: Name,
		Build:    &spec.Build{Command: runtimetest.BuildCommand, Dockerfile: "Dockerfile", Workdir: spec.DefaultWorkdir},
		Services: map[string]*spec.Service{"web": {Name: "web", Files: []spec.VolumeMount{{Name: "./custom", Path: "/app/custom"}}}}}
	build := func(release string, files map[string]string) (runtime.Artifact, string, error) {
		t.Helper()
		ctxDir := t.TempDir()
		if err := runtimetest.WriteApp(ctxDir); err != nil {
			t.Fatal(err)
		}
		for p, content := range files {
			full := filepath.Join(ctxDir, p)
			if strings.HasSuffix(p, "/") {
				os.MkdirAll(full, 0o755)
				continue
			}
			os.MkdirAll(filepath.Dir(full), 0o755)
			mode := os.FileMode(0o644)
			if strings.HasSuffix(p, ".sh") {
				mode = 0o755
			}
			if err := os.WriteFile(full, []byte(content), mode); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		a, err := r.Build(ctx, runtime.BuildRequest{App: app, Release: release, ContextDir: ctxDir, Spec: sp, Output: &out})
		return a, out.String(), err
	}
	configs := func() []string {
		t.Helper()
		res, err := r.cli.ConfigList(ctx, client.ConfigListOptions{Filters: r.configFilter(app)})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range res.Items {
			out = append(out, c.Spec.Name)
		}
		sort.Strings(out)
		return out
	}
	exec := func(id string, cmd ...string) (int, string) {
		t.Helper()
		var out bytes.Buffer
		code, err := r.Exec(ctx, id, runtime.ExecSpec{Cmd: cmd, Stdout: &out, Stderr: &out})
		if err != nil {
			t.Fatalf("exec %v in %s: %v", cmd, id, err)
		}
		return code, out.String()
	}

	tree := map[string]string{
		"custom/message.txt":             "one",
		"custom/templates/deep/base.txt": "a template",
		"custom/bin/hook.sh":             "#!/bin/sh\n",
		"custom/uploads/":                "",
		"custom/templates/__init__.py":   "",
	}
	v1, out, err := build("v1", tree)
	if err != nil {
		t.Fatalf("build v1: %v\n%s", err, out)
	}
	if !strings.Contains(out, "3 files of the upload (./dir mounts) are swarm configs, 3 new") {
		t.Errorf("build output:\n%s", out)
	}
	first := configs()
	if len(first) != 3 {
		t.Fatalf("configs after v1: %q", first)
	}
	web := func(a runtime.Artifact) runtime.InstanceSpec {
		return runtime.InstanceSpec{App: app, Service: "web", Release: a.Files[len(app)+1:], Index: 1, Kind: runtime.KindService, Artifact: a,
			Command: []string{"./app", "serve"}, Port: 8080, Publish: true, StopTimeout: 5 * time.Second,
			Mounts: []runtime.Mount{{Name: "./custom", Target: "/app/custom"}}}
	}
	w1 := web(v1)
	in, err := r.Start(ctx, w1)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("web of v1 runs on %s", in.Node)
	if code, got := exec(w1.ID(), "./app", "cat", "/app/custom/templates/deep/base.txt"); code != 0 || got != "a template" {
		t.Errorf("cat: %d %q", code, got)
	}
	if code, got := exec(w1.ID(), "./app", "cat", "/app/custom/templates/__init__.py"); code != 0 || got != "" {
		t.Errorf("cat of an empty file: %d %q", code, got)
	}
	_, ls := exec(w1.ID(), "./app", "ls", "/app/custom")
	for _, want := range []string{". drwxr-xr-x", "message.txt -rw-r--r--", "bin/hook.sh -rwxr-xr-x", "templates/deep/base.txt -rw-r--r--", "uploads drwxr-xr-x"} {
		if !strings.Contains(ls, want+"\n") {
			t.Errorf("ls lacks %q:\n%s", want, ls)
		}
	}
	if code, _ := exec(w1.ID(), "./app", "write", "/app/custom/message.txt", "changed"); code == 0 {
		t.Error("a task could write a file of ./custom")
	}
	// A one-off (a release task) gets the files too, on any node.
	var rout bytes.Buffer
	run := runtime.RunSpec{InstanceSpec: w1, Stdout: &rout, Stderr: &rout, Timeout: 2 * time.Minute}
	run.Service, run.Kind, run.Index = "migrate", runtime.KindTask, 1
	run.Command = []string{"./app", "cat", "/app/custom/message.txt"}
	run.Port, run.Publish = 0, false
	if code, err := r.Run(ctx, run); err != nil || code != 0 || rout.String() != "one\n" { // a last line gets a newline
		t.Errorf("one-off: %d %v %q", code, err, rout.String())
	}
	// One with input (or a terminal) runs in a container on the manager,
	// which cannot mount configs: it gets a copy of the same tree, without
	// write permission.
	rout.Reset()
	run.Stdin = strings.NewReader("input the command does not read\n") // empty input would make it a job
	run.Command = []string{"./app", "cat", "/app/custom/templates/deep/base.txt"}
	if code, err := r.Run(ctx, run); err != nil || code != 0 || rout.String() != "a template" {
		t.Errorf("interactive one-off: %d %v %q", code, err, rout.String())
	}
	rout.Reset()
	run.Stdin = strings.NewReader("input the command does not read\n")
	run.Command = []string{"./app", "ls", "/app/custom"}
	if code, err := r.Run(ctx, run); err != nil || code != 0 {
		t.Errorf("interactive one-off ls: %d %v %q", code, err, rout.String())
	}
	for _, want := range []string{". dr-xr-xr-x", "message.txt -r--r--r--", "bin/hook.sh -r-xr-xr-x", "templates/deep/base.txt -r--r--r--", "uploads dr-xr-xr-x"} {
		if !strings.Contains(rout.String(), want+"\n") {
			t.Errorf("the interactive one-off's ls lacks %q:\n%s", want, rout.String())
		}
	}
	run.Stdin = nil

	// v2 changes one file: one new config, the others shared.
	tree["custom/message.txt"] = "two"
	v2, out, err := build("v2", tree)
	if err != nil || !strings.Contains(out, "are swarm configs, 1 new") {
		t.Fatalf("build v2: %v\n%s", err, out)
	}
	w2 := web(v2)
	if _, err := r.Start(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if code, got := exec(w2.ID(), "./app", "cat", "/app/custom/message.txt"); code != 0 || got != "two" {
		t.Errorf("v2 reads %d %q", code, got)
	}
	if code, got := exec(w1.ID(), "./app", "cat", "/app/custom/message.txt"); code != 0 || got != "one" {
		t.Errorf("v1's web reads %d %q after v2's build", code, got)
	}
	if n := len(configs()); n != 4 {
		t.Errorf("%d configs after v2, want 4", n)
	}

	// An accessory started with v1's files (its own image) keeps them
	// when v1 is pruned; they go once it is gone.
	if err := r.Remove(ctx, w1.ID()); err != nil {
		t.Fatal(err)
	}
	acc := runtime.InstanceSpec{App: app, Service: "cfg", Kind: runtime.KindAccessory, Image: v2.Ref, Artifact: v1,
		Command: []string{"/app/app", "serve"}, Port: 8080, StopTimeout: 5 * time.Second,
		Mounts: []runtime.Mount{{Name: "./custom", Target: "/conf"}}}
	if _, err := r.Start(ctx, acc); err != nil {
		t.Fatal(err)
	}
	// Right after its one-off's job and its web's service went: their
	// exited containers, which Swarm's agents remove only later, do not
	// keep v1's image on any node.
	if err := r.RemoveArtifact(ctx, v1); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if _, err := n.Client.ImageInspect(ctx, v1.Ref); !isNotFound(err) {
			t.Errorf("v1's image is still on %s once pruned: %v", n.Name, err)
		}
	}
	if n := len(configs()); n != 4 {
		t.Errorf("%d configs once v1 is pruned with an accessory using its files, want 4", n)
	}
	if code, got := exec(acc.ID(), "/app/app", "cat", "/conf/message.txt"); code != 0 || got != "one" {
		t.Errorf("the accessory reads %d %q once v1 is pruned", code, got)
	}
	if err := r.Remove(ctx, acc.ID()); err != nil {
		t.Fatal(err)
	}
	big := map[string]string{"custom/message.txt": "three", "custom/big.bin": strings.Repeat("x", maxConfigSize)}
	_, out, err = build("v3", big)
	if !errors.Is(err, runtime.ErrBuild) || !errors.Is(err, ErrFilesDoNotFit) || !strings.Contains(err.Error(), "./custom/big.bin is 1000.0 KiB") {
		t.Fatalf("a file too big: %v", err)
	}
	if strings.Contains(out, "building image") {
		t.Errorf("the image was built before the files were refused:\n%s", out)
	}
	if err := r.RemoveArtifact(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if n := len(configs()); n != 3 {
		t.Errorf("%d configs once the accessory is gone, want v2's 3", n)
	}
	if err := r.Remove(ctx, w2.ID()); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveArtifact(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if left := configs(); len(left) != 0 {
		t.Errorf("configs left once every release is pruned: %q", left)
	}
}
