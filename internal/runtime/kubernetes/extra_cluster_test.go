package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/spec"
)

// rtBuild builds the conformance suite's test program for app.
func rtBuild(t *testing.T, r *Runtime, app string) runtime.Artifact {
	t.Helper()
	ctxDir := t.TempDir()
	if err := runtimetest.WriteApp(ctxDir); err != nil {
		t.Fatal(err)
	}
	sp := &spec.Spec{App: app, Runtime: Name, Build: &spec.Build{Command: runtimetest.BuildCommand, Dockerfile: "Dockerfile", Workdir: spec.DefaultWorkdir}}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := r.Build(ctx, runtime.BuildRequest{App: app, Release: "v1", ContextDir: ctxDir, Spec: sp, Output: &out})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	return a
}

func rtService(app, svc, rel string, a runtime.Artifact, cmd ...string) runtime.InstanceSpec {
	return runtime.InstanceSpec{App: app, Service: svc, Release: rel, Index: 1, Kind: runtime.KindService, Artifact: a,
		Command: append([]string{"./app"}, cmd...), Port: 8080, Publish: true, StopSignal: syscall.SIGTERM, StopTimeout: 5 * time.Second}
}

func rtCleanup(t *testing.T, r *Runtime, app string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		ins, _ := r.List(ctx, runtime.Filter{App: app})
		for _, in := range ins {
			if err := r.Remove(ctx, in.ID); err != nil {
				t.Errorf("cleanup: remove %s: %v", in.ID, err)
			}
		}
		r.Close()
	})
}

// testKubernetesExec: Exec runs in the instance's container with its
// environment, passes input, and keeps stdout and stderr apart; extra
// variables are refused as not supported; a command that refers to a
// variable, in an image with no shell, fails saying the image needs one.
func testKubernetesExec(t *testing.T, open func(t *testing.T, dir string) *Runtime, dir string) {
	r := open(t, dir)
	app := "rtexec" + rtPrefix(dir)[2:]
	rtCleanup(t, r, app)
	a := rtBuild(t, r, app)
	ctx := context.Background()
	sp := rtService(app, "web", "v1", a, "serve")
	sp.Env = map[string]string{"GREETING": "hi there"}
	if _, err := r.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code, err := r.Exec(ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "getenv", "GREETING"}, Stdout: &out}); err != nil || code != 0 || out.String() != "hi there\n" {
		t.Errorf("exec getenv = %d %v %q", code, err, out.String())
	}
	out.Reset()
	code, err := r.Exec(ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "print", "-n", "1", "-exit", "4"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 4 || !strings.Contains(out.String(), "out 1") || strings.Contains(out.String(), "err 1") || !strings.Contains(errOut.String(), "err 1") {
		t.Errorf("exec print = %d %v stdout %q stderr %q", code, err, out.String(), errOut.String())
	}
	out.Reset()
	if code, err := r.Exec(ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "cat", "-"}, Stdin: strings.NewReader("from stdin"), Stdout: &out}); err != nil || code != 0 || out.String() != "from stdin" {
		t.Errorf("exec with stdin = %d %v %q", code, err, out.String())
	}
	// A command that refers to a variable is expanded in the container by
	// /bin/sh; this image (FROM scratch) has none, and the error says so.
	code, err = r.Exec(ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "getenv", "$GREETING"}, Stdout: &out, Stderr: &errOut})
	if err == nil || code != -1 || !strings.Contains(err.Error(), "the image has no /bin/sh") || !strings.Contains(err.Error(), "$GREETING") {
		t.Errorf("exec of a command that refers to a variable, in an image with no shell = %d %v, want an error that says the image needs /bin/sh", code, err)
	}
	if _, err := r.Exec(ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "getenv", "X"}, Env: map[string]string{"X": "1"}}); !errors.Is(err, runtime.ErrNotSupported) {
		t.Errorf("exec with extra env: %v, want ErrNotSupported", err)
	}
	// What the suite's Pause test would check is refused, saying so (the
	// suite skips it: Kubernetes cannot freeze a pod).
	if err := r.Pause(ctx, sp.ID()); !errors.Is(err, runtime.ErrNotSupported) {
		t.Errorf("pause: %v, want ErrNotSupported", err)
	}
	if err := r.Resume(ctx, sp.ID()); !errors.Is(err, runtime.ErrNotSupported) {
		t.Errorf("resume: %v, want ErrNotSupported", err)
	}
	if _, err := r.Exec(ctx, app+"-nothing-v1-1", runtime.ExecSpec{Cmd: []string{"./app", "exit", "0"}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("exec in an unknown instance: %v, want ErrNotFound", err)
	}
}

// testKubernetesSingleton: the next release's singleton is started while
// the old one runs; its Start waits until the old pod is gone (deleted,
// not merely Terminating), and a watch of the pods never sees two.
func testKubernetesSingleton(t *testing.T, cs k8s.Interface, open func(t *testing.T, dir string) *Runtime, dir string) {
	r := open(t, dir)
	app := "rtsingle" + rtPrefix(dir)[2:]
	rtCleanup(t, r, app)
	a := rtBuild(t, r, app)
	ctx := context.Background()
	v1 := rtService(app, "beat", "v1", a, "serve", "-ignore-term")
	v1.Single, v1.StopTimeout = true, 3*time.Second
	if _, err := r.Start(ctx, v1); err != nil {
		t.Fatal(err)
	}
	// Watch the pods of the service: never two at once.
	wctx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	most := 0
	var watched sync.WaitGroup
	watched.Add(1)
	go func() {
		defer watched.Done()
		for wctx.Err() == nil {
			pods, err := cs.CoreV1().Pods(r.Namespace(app)).List(wctx, metav1.ListOptions{LabelSelector: LabelService + "=beat"})
			if err == nil {
				mu.Lock()
				most = max(most, len(pods.Items))
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	v2 := v1
	v2.Release = "v2"
	started := make(chan error, 1)
	go func() {
		_, err := r.Start(ctx, v2)
		started <- err
	}()
	select {
	case err := <-started:
		t.Fatalf("the v2 singleton started while v1 ran: %v", err)
	case <-time.After(3 * time.Second):
	}
	if err := r.Stop(ctx, v1.ID()); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("v2 after v1 stopped: %v", err)
	}
	time.Sleep(time.Second)
	stop()
	watched.Wait()
	if most != 1 {
		t.Errorf("the pods of the singleton: %d at once, want 1", most)
	}
	if ins, err := r.List(ctx, runtime.Filter{App: app, Release: "v2"}); err != nil || len(ins) != 1 || ins[0].State != runtime.StateRunning {
		t.Errorf("v2 listed %+v %v, want running", ins, err)
	}
}
