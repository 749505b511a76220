package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// RunRequest is a one-off command (`moorage run`).
type RunRequest struct {
	App     string
	Service string // whose env and volumes it gets; "" = the app's (like release tasks)
	Command []string
	TTY     bool
	Size    runtime.TermSize        // with TTY: the terminal's size at the start (zero: unknown)
	Resize  <-chan runtime.TermSize // with TTY: its changes
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Owner   string
}

var oneOffSeq atomic.Int64

// RunOneOff runs a command in the active release with its env, secrets and
// volumes, streaming its output, and returns its exit code. Nothing about
// the deployment changes, so it takes no lock. The command's name (not its
// arguments, which may hold credentials) is recorded in the app's events.
func (e *Engine) RunOneOff(ctx context.Context, req RunRequest) (int, error) {
	if len(req.Command) == 0 {
		return -1, errors.New("no command given: moorage run [SERVICE] -- COMMAND [ARGS...]")
	}
	code := -1
	err := e.OperateLocked(ctx, nil, LockedOperation{
		App: req.App, Owner: req.Owner, NeedApp: true,
		NotDeployed: func() error { return fmt.Errorf("run in %s: %w; deploy it first", req.App, ErrNotDeployed) },
	}, func(ctx context.Context, _ *store.App, rel *store.Release) error {
		var err error
		code, err = e.runOneOff(ctx, rel, req)
		return err
	})
	return code, err
}

// runOneOff is RunOneOff in rel, the app's active release.
func (e *Engine) runOneOff(ctx context.Context, rel *store.Release, req RunRequest) (int, error) {
	rt, err := e.Runtime(rel.Runtime)
	if err != nil {
		return -1, err
	}
	var svc *spec.Service
	if req.Service != "" {
		if svc = rel.Spec.Services[req.Service]; svc == nil {
			return -1, fmt.Errorf("%s has no service %q (services: %s)", rel.ID(), req.Service, strings.Join(rel.Spec.ServiceNames(), ", "))
		}
	}
	env, err := e.releaseEnv(ctx, rel, req.Service)
	if err != nil {
		return -1, err
	}
	seq := oneOffSeq.Add(1)
	is := runtime.InstanceSpec{
		App: rel.App, Service: "run", Release: rel.ID(), Index: int(time.Now().Unix()%100000)*1000 + int(seq%1000),
		Kind: runtime.KindTask, Artifact: rel.Artifact, Command: req.Command, Env: env,
		Mounts: mountsFor(rel.Spec, req.Service), StopSignal: syscall.SIGTERM, StopTimeout: spec.DefaultStopTimeout,
	}
	if svc != nil {
		is.User, is.AllowRoot, is.ReadOnly, is.Memory, is.CPUs = svc.User, svc.AllowRoot, svc.ReadOnly, svc.Memory, svc.CPUs
	} else {
		is.User, is.AllowRoot = firstService(rel.Spec).User, firstService(rel.Spec).AllowRoot
	}
	if w := oneOffSecretRefs(rel, req.Command); w != "" && req.Stderr != nil {
		io.WriteString(req.Stderr, w)
	}
	start := time.Now()
	code, err := rt.Run(ctx, runtime.RunSpec{InstanceSpec: is, TTY: req.TTY, Size: req.Size, Resize: req.Resize, Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr})
	msg := fmt.Sprintf("run `%s` in %s by %s: ", req.Command[0], rel.ID(), req.Owner)
	if err != nil {
		msg += "failed: " + err.Error()
	} else {
		msg += fmt.Sprintf("exit %d after %s", code, time.Since(start).Round(time.Millisecond))
	}
	e.st.AddEvent(context.WithoutCancel(ctx), store.AppEvent{App: rel.App, Kind: "run", Instance: is.ID(), Message: msg})
	return code, err
}
