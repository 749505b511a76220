package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// CommandRun is one command run in a built, never-started release (a
// preflight check or a pipeline test).
type CommandRun struct {
	Index    int
	Command  []string
	Line     int // the command's line in the spec
	Code     int // exit status; -1 when it did not run to an exit
	Err      error
	Output   string // the tail of its output
	Duration time.Duration
}

// OK reports whether the command exited 0.
func (c CommandRun) OK() bool { return c.Err == nil && c.Code == 0 }

// InBuildRequest asks to build an upload as a throwaway artifact and run
// commands in it. Nothing is started, no release is recorded, and the
// artifact is removed at the end.
type InBuildRequest struct {
	Spec       *spec.Spec
	ContextDir string // the engine owns it from now on
	Tasks      []spec.Task
	// Env is the commands' environment. Nil: the app's, as release tasks
	// and checks get it (config values and secrets).
	Env map[string]string
	// Output, when set, receives the build's and the commands' output as
	// it comes.
	Output func(line string)
	// Built, when set, is called once the build is done (err: it failed).
	Built func(err error)
}

// InBuildResult is what RunInBuild found.
type InBuildResult struct {
	BuildOutput string
	BuildErr    error
	BuildTime   time.Duration
	Runs        []CommandRun
}

var checkSeq atomic.Int64

// RunInBuild builds req's context as a throwaway artifact of the spec's
// runtime and runs req.Tasks in it one after the other, as one-off
// instances like release tasks (all of them, even after a failure). It
// never starts a service and records no release; the artifact is removed
// before it returns.
func (e *Engine) RunInBuild(ctx context.Context, req InBuildRequest) (InBuildResult, error) {
	sp := req.Spec
	rt, err := e.Runtime(sp.Runtime)
	if err != nil {
		return InBuildResult{}, err
	}
	vars, err := e.st.GetConfig(ctx, sp.App)
	if err != nil {
		return InBuildResult{}, err
	}
	cfg := configOf(vars)
	label := fmt.Sprintf("check-%d-%d", time.Now().UnixNano(), checkSeq.Add(1))
	var res InBuildResult
	bout := newTailWriter(req.Output)
	t0 := time.Now()
	art, err := rt.Build(ctx, runtime.BuildRequest{
		App: sp.App, Release: label, ContextDir: req.ContextDir, Spec: sp, Output: bout,
		Env: buildEnv(sp, cfg),
	})
	res.BuildTime, res.BuildOutput = time.Since(t0), bout.String()
	if req.Built != nil {
		req.Built(err)
	}
	if err != nil {
		res.BuildErr = err
		return res, nil
	}
	defer rt.RemoveArtifact(context.WithoutCancel(ctx), art)

	env := req.Env
	if env == nil {
		rel := &store.Release{App: sp.App, Spec: sp, Config: cfg, Artifact: art, Runtime: sp.Runtime}
		if env, err = e.releaseEnv(ctx, rel, ""); err != nil {
			return res, err
		}
	}
	// As the release tasks run: as the first service.
	user, allowRoot := firstService(sp).User, firstService(sp).AllowRoot
	for i, t := range req.Tasks {
		timeout := t.Timeout
		if timeout <= 0 {
			timeout = sp.Deploy.ReleaseTimeout
		}
		if timeout <= 0 {
			timeout = spec.DefaultReleaseTimeout
		}
		w := newTailWriter(req.Output)
		is := runtime.InstanceSpec{
			App: sp.App, Service: fmt.Sprintf("%s-%d", label, i+1), Release: label, Kind: runtime.KindTask,
			Artifact: art, Command: t.Command, Env: env, Mounts: mountsFor(sp, ""),
			StopSignal: syscall.SIGTERM, StopTimeout: spec.DefaultStopTimeout, User: user, AllowRoot: allowRoot,
		}
		t1 := time.Now()
		code, err := rt.Run(ctx, runtime.RunSpec{InstanceSpec: is, Timeout: timeout, Stdout: w, Stderr: w})
		run := CommandRun{Index: i, Command: t.Command, Line: t.Line, Code: code, Err: err, Duration: time.Since(t1)}
		if err != nil {
			run.Code = -1
			if errors.Is(err, runtime.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				run.Err = fmt.Errorf("did not finish within %s", timeout)
			}
		}
		run.Output = w.String()
		res.Runs = append(res.Runs, run)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	return res, nil
}

// tailWriter keeps the last store.MaxStepOutput bytes written to it and
// passes whole lines on.
type tailWriter struct {
	mu      sync.Mutex
	buf     []byte
	partial []byte
	line    func(string)
}

// maxPartialLine bounds a line kept waiting for its newline.
const maxPartialLine = 16 << 10

func newTailWriter(line func(string)) *tailWriter { return &tailWriter{line: line} }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2*store.MaxStepOutput {
		w.buf = append([]byte(nil), w.buf[len(w.buf)-store.MaxStepOutput:]...)
	}
	if w.line != nil {
		w.partial = append(w.partial, p...)
		for {
			i := bytes.IndexByte(w.partial, '\n')
			if i < 0 {
				break
			}
			w.line(strings.TrimRight(string(w.partial[:i]), "\r"))
			w.partial = w.partial[i+1:]
		}
		// Output that never ends its line (a progress bar, a binary) is
		// passed on in pieces: what waits for a newline stays bounded.
		for len(w.partial) >= maxPartialLine {
			w.line(string(w.partial[:maxPartialLine]))
			w.partial = w.partial[maxPartialLine:]
		}
		w.partial = append([]byte(nil), w.partial...) // let the passed-on bytes go
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.line != nil && len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
	b := w.buf
	if len(b) > store.MaxStepOutput {
		b = b[len(b)-store.MaxStepOutput:]
	}
	return string(b)
}

// OpenSecrets returns the values of app's secrets names (for the
// pipeline's test stage, which gets only those its spec lists).
func (e *Engine) OpenSecrets(ctx context.Context, app string, names []string) (map[string]string, error) {
	vars, err := e.st.GetConfig(ctx, app)
	if err != nil {
		return nil, err
	}
	rel := &store.Release{App: app, Config: configOf(vars)}
	out := map[string]string{}
	for _, k := range names {
		v, err := e.openSecret(rel, k)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// SealValue seals a value of app under name with the server's secrets key
// (webhook secrets); OpenValue opens it.
func (e *Engine) SealValue(app, name string, v []byte) ([]byte, error) {
	if e.secrets == nil {
		return nil, fmt.Errorf("%w: no secrets key is loaded", ErrSecrets)
	}
	return e.secrets.Seal(app, name, v)
}

// OpenValue opens what SealValue sealed.
func (e *Engine) OpenValue(app, name string, sealed []byte) ([]byte, error) {
	if e.secrets == nil {
		return nil, fmt.Errorf("%w: no secrets key is loaded", ErrSecrets)
	}
	return e.secrets.Open(app, name, sealed)
}
