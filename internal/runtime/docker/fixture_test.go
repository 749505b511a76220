package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/runtimetest"
	"github.com/moorage/moorage/internal/spec"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fix.prefix != "" {
		removeAll(fix.prefix)
	}
	if fix.dir != "" {
		os.RemoveAll(fix.dir)
	}
	os.Exit(code)
}

// fix holds what the docker-specific tests share: the conformance test
// program, compiled once, and an image of it (with busybox when the host
// has a static one), built once.
var fix struct {
	once   sync.Once
	err    error
	dir    string // the compiled program (and busybox)
	prefix string
	art    runtime.Artifact // FROM scratch, /app/app, USER 65534
	shell  bool             // the image has /bin/sh (busybox)
}

func fixture(t *testing.T) {
	t.Helper()
	requireDocker(t)
	fix.once.Do(func() { fix.err = buildFixture() })
	if fix.err != nil {
		t.Fatalf("fixture: %v", fix.err)
	}
}

func buildFixture() error {
	dir, err := os.MkdirTemp("", "moorage-docker-fixture-")
	if err != nil {
		return err
	}
	fix.dir = dir
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return err
	}
	if err := runtimetest.WriteApp(src); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "app"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		if b, err := os.ReadFile(bb); err == nil && os.WriteFile(filepath.Join(dir, "busybox"), b, 0o755) == nil {
			fix.shell = true
		}
	}
	o := options(filepath.Join(dir, "data"))
	fix.prefix = o.Prefix
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rt, err := New(ctx, o)
	if err != nil {
		return err
	}
	defer rt.Close()
	df := "FROM scratch\nWORKDIR /app\nCOPY app /app/app\n"
	if fix.shell {
		df += "COPY busybox /bin/busybox\nCOPY busybox /bin/sh\n"
	}
	df += "USER 65534\n"
	art, _, err := buildImage(ctx, rt, "fixture", df, nil, nil)
	fix.art = art
	return err
}

// buildImage builds an image of the test program with Dockerfile df and
// extra context files.
func buildImage(ctx context.Context, rt *Runtime, app, df string, files map[string]string, sp *spec.Spec) (runtime.Artifact, string, error) {
	ctxDir, err := os.MkdirTemp(fix.dir, "context-")
	if err != nil {
		return runtime.Artifact{}, "", err
	}
	for _, f := range []string{"app", "busybox"} {
		b, err := os.ReadFile(filepath.Join(fix.dir, f))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(ctxDir, f), b, 0o755); err != nil {
			return runtime.Artifact{}, "", err
		}
	}
	files = mergeFiles(files, map[string]string{"Dockerfile": df})
	for name, content := range files {
		p := filepath.Join(ctxDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return runtime.Artifact{}, "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return runtime.Artifact{}, "", err
		}
	}
	if sp == nil {
		sp = &spec.Spec{App: app, Runtime: Name, Build: &spec.Build{Dockerfile: "Dockerfile", Workdir: "/app"}}
	}
	var out syncBuffer
	art, err := rt.Build(ctx, runtime.BuildRequest{App: app, Release: "v1", ContextDir: ctxDir, Spec: sp, Output: &out})
	return art, out.String(), err
}

func mergeFiles(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// syncBuffer is a strings.Builder safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
