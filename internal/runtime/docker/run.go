package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Run runs a one-off container to completion: the instance's image, env,
// network and volumes, a TTY when asked, stdin when given. Its output
// streams to s.Stdout and s.Stderr, its exit code is returned, and it is
// removed afterwards. s.Timeout and ctx kill it (the error is then
// ErrTimeout or ctx's). A one-off a dead server left running is removed by
// the next runtime (see New).
func (r *Runtime) Run(ctx context.Context, s runtime.RunSpec) (int, error) {
	return r.tasks.Run(r.life.Check, &s, validateSpec, func(id string, fail func(error) (int, error)) (int, error) {
		return r.run(ctx, &s, id, fail)
	})
}

// run is Run once the one-off id has begun (seam.Tasks.Run).
func (r *Runtime) run(ctx context.Context, s *runtime.RunSpec, id string, fail func(error) (int, error)) (int, error) {
	if len(s.Command) == 0 && s.Kind == runtime.KindTask {
		// The image's default command is allowed, but say so in errors.
		r.log.Debug("one-off with the image's default command", "task", id)
	}
	name := r.names.Instance(id)
	if _, err := r.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil {
		return fail(runtime.ErrExists)
	} else if !isNotFound(err) {
		return fail(err)
	}
	img, err := r.imageFor(ctx, &s.InstanceSpec)
	if err != nil {
		return fail(err)
	}
	p, err := r.containerPlan(ctx, &s.InstanceSpec, img, s)
	if err != nil {
		return fail(err)
	}
	created, err := r.cli.ContainerCreate(ctx, p.create)
	if err != nil {
		return fail(fmt.Errorf("create container: %w", err))
	}
	cid := created.ID
	// Whatever happens, the one-off goes.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := r.cli.ContainerRemove(rctx, cid, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			r.log.Warn("remove one-off container", "task", id, "err", err)
		}
	}()
	r.prepareVolumes(ctx, p)
	res, err := RunAttached(ctx, r.ctx, r.cli, cid, s, r.log.With("task", id))
	if err != nil {
		return fail(err)
	}
	return res.Finish(id, s, r.events.Publish)
}

// RunResult is how a one-off's container ended (RunAttached).
type RunResult struct {
	Code   int   // its exit code; -1 when unknown
	Killed error // why it was killed (ctx's error, ErrTimeout, ErrRuntimeClosed); nil when it exited by itself
	Wait   error // waiting for it failed
}

// RunAttached attaches s's streams to the created container cid on cli's
// engine (a TTY's output as is, else stdout and stderr apart; s.Stdin when
// given), starts it and waits until it exits. ctx, s.Timeout and closed
// (the runtime's life: Close) kill it. The error is an attach or start
// that failed; the container is the caller's to remove. The swarm runtime
// runs its interactive one-offs with it on a node's engine.
func RunAttached(ctx, closed context.Context, cli *client.Client, cid string, s *runtime.RunSpec, log *slog.Logger) (RunResult, error) {
	att, err := cli.ContainerAttach(ctx, cid, client.ContainerAttachOptions{
		Stream: true, Stdin: s.Stdin != nil, Stdout: true, Stderr: true,
	})
	if err != nil {
		return RunResult{Code: -1}, fmt.Errorf("attach: %w", err)
	}
	defer att.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		stdout, stderr := seam.WriterOr(s.Stdout), seam.WriterOr(s.Stderr)
		if s.TTY {
			_, _ = io.Copy(&seam.DrainWriter{W: stdout}, att.Reader)
			return
		}
		_, _ = stdcopy.StdCopy(&seam.DrainWriter{W: stdout}, &seam.DrainWriter{W: stderr}, att.Reader)
	}()
	if _, err := cli.ContainerStart(ctx, cid, client.ContainerStartOptions{}); err != nil {
		return RunResult{Code: -1}, fmt.Errorf("start container: %w", err)
	}
	if s.TTY {
		// The terminal gets the client's size before any input reaches
		// the command (Engine 20.10 ignores a size given at create), then
		// each change while it runs.
		resize := func(sz runtime.TermSize) {
			if sz.Zero() {
				return
			}
			if _, err := cli.ContainerResize(ctx, cid, client.ContainerResizeOptions{Height: uint(sz.Rows), Width: uint(sz.Cols)}); err != nil {
				log.Debug("resize a one-off's terminal", "err", err)
			}
		}
		resize(s.Size)
		defer seam.FollowResize(s.Resize, resize)()
	}
	if s.Stdin != nil {
		// Not waited for: Stdin may block forever. It ends when its reader
		// returns or the connection closes.
		go func() {
			_, _ = io.Copy(att.Conn, s.Stdin)
			if !s.TTY {
				// The container's stdin closes. (With a TTY, Docker would
				// end the attached output too: input ends, the terminal
				// stays until the program exits.)
				_ = att.CloseWrite()
			}
		}()
	}
	var expired <-chan time.Time
	if s.Timeout > 0 {
		t := time.NewTimer(s.Timeout)
		defer t.Stop()
		expired = t.C
	}
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	wait := cli.ContainerWait(wctx, cid, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	code := -1
	var killed, werr error
	select {
	case w := <-wait.Result:
		code = int(w.StatusCode)
	case werr = <-wait.Error:
	case <-ctx.Done():
		killed = ctx.Err()
	case <-expired:
		killed = fmt.Errorf("after %s: %w", s.Timeout, runtime.ErrTimeout)
	case <-closed.Done():
		killed = runtime.ErrRuntimeClosed
	}
	if killed != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if _, err := cli.ContainerKill(kctx, cid, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
			log.Debug("kill one-off", "err", err)
		}
		select {
		case w := <-wait.Result:
			code = int(w.StatusCode)
		case <-wait.Error:
		case <-kctx.Done():
		}
		cancel()
	}
	// The attach stream ends with the container; a TTY may keep it a moment.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		att.Close()
		<-copied
	}

	return RunResult{Code: code, Killed: killed, Wait: werr}, nil
}

// Finish publishes the exit event of one-off id and returns what Run
// returns: its exit code, and why it was killed or could not be waited for.
func (res RunResult) Finish(id string, s *runtime.RunSpec, publish func(runtime.InstanceEvent)) (int, error) {
	ev := runtime.InstanceEvent{
		Time: time.Now().UTC(), Type: runtime.EventExit, Instance: id, App: s.App, Service: s.Service,
		Release: s.Release, Kind: s.Kind, ExitCode: res.Code, Message: fmt.Sprintf("exit status %d", res.Code),
	}
	switch {
	case res.Killed != nil:
		ev.Message = res.Killed.Error()
	case res.Wait != nil:
		ev.Message = res.Wait.Error()
	}
	publish(ev)
	if res.Killed != nil {
		return res.Code, fmt.Errorf("run %s: %w", id, res.Killed)
	}
	if res.Wait != nil {
		return res.Code, fmt.Errorf("run %s: wait: %w", id, res.Wait)
	}
	return res.Code, nil
}

// Exec runs a command in a running container (docker exec) with its
// environment plus e.Env, as its user, in its working directory, and
// returns the exit code. $VAR and ${VAR} in the command are expanded from
// that environment. Cancelling ctx stops waiting for it.
func (r *Runtime) Exec(ctx context.Context, id string, e runtime.ExecSpec) (int, error) {
	if err := r.life.Check(); err != nil {
		return -1, err
	}
	if len(e.Cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: no command: %w", id, runtime.ErrInvalidSpec)
	}
	c, err := r.inspect(ctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if !c.State.Running || c.State.Paused {
		return -1, fmt.Errorf("exec in %s: instance is %s, not running", id, c.State.Status)
	}
	code, err := ExecIn(ctx, r.cli, c.ID, c.Config.Env, e)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	return code, nil
}

// ExecIn runs e in the running container cid on cli's engine (docker exec)
// with the container's environment (containerEnv, "K=V") plus e.Env, and
// returns the exit code. $VAR and ${VAR} in the command are expanded from
// that environment. The swarm runtime uses it on a task's node.
func ExecIn(ctx context.Context, cli *client.Client, cid string, containerEnv []string, e runtime.ExecSpec) (int, error) {
	cmd := runtime.Expand(e.Cmd, runtime.Merge(envMap(containerEnv), e.Env))
	ex, err := cli.ExecCreate(ctx, cid, client.ExecCreateOptions{
		Cmd:          cmd,
		Env:          runtime.EnvList(e.Env),
		AttachStdin:  e.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return -1, err
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return -1, err
	}
	defer att.Close()
	if e.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, e.Stdin)
			_ = att.CloseWrite()
		}()
	}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&seam.DrainWriter{W: seam.WriterOr(e.Stdout)}, &seam.DrainWriter{W: seam.WriterOr(e.Stderr)}, att.Reader)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return -1, err
		}
	case <-ctx.Done():
		att.Close()
		return -1, ctx.Err()
	}
	// The output ended: the process has exited, or is about to.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, err
		}
		if !st.Running {
			return st.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("still running after its output closed: %w", runtime.ErrTimeout)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
}

// Pause freezes every process of a running container (docker pause).
func (r *Runtime) Pause(ctx context.Context, id string) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	c, err := r.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("pause %s: %w", id, err)
	}
	if !c.State.Running {
		return fmt.Errorf("pause %s: instance is %s, not running", id, c.State.Status)
	}
	if _, err := r.cli.ContainerPause(ctx, c.ID, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", id, err)
	}
	return nil
}

// Resume thaws a paused container (docker unpause).
func (r *Runtime) Resume(ctx context.Context, id string) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	c, err := r.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	if !c.State.Paused {
		return nil
	}
	if _, err := r.cli.ContainerUnpause(ctx, c.ID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	return nil
}

// adoptAll re-adopts the runtime's containers after a server restart:
// running ones are supervised again (no restart) and their logs copied on
// from where they stopped; exited ones get their last output copied;
// one-offs a dead server left are removed.
func (r *Runtime) adoptAll(ctx context.Context) error {
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: r.names.Filter()})
	if err != nil {
		return fmt.Errorf("docker runtime: list containers: %w", err)
	}
	for _, item := range res.Items {
		id := item.Labels[containers.LabelInstance]
		if id == "" || !r.names.Owned(item.Labels) {
			continue
		}
		ci, err := r.cli.ContainerInspect(ctx, item.ID, client.ContainerInspectOptions{})
		if err != nil {
			continue
		}
		c := &ci.Container
		if c.State == nil || c.Config == nil {
			continue
		}
		app := c.Config.Labels[containers.LabelApp]
		if c.Config.Labels[containers.LabelKind] == string(runtime.KindTask) {
			r.log.Warn("removing a one-off left running by a previous server", "task", id)
			if _, err := r.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
				r.log.Warn("remove one-off", "task", id, "err", err)
			}
			continue
		}
		lf, err := logs.Open(seam.LogPath(r.opts.DataDir, app, id), r.opts.LogMaxSize, r.opts.LogMaxFiles)
		if err != nil {
			r.log.Warn("open log", "instance", id, "err", err)
			continue
		}
		if c.State.Running || c.State.Paused {
			r.supervise(id, c, lf, readState(r.statePath(id)).Restarts)
			r.log.Debug("re-adopted container", "instance", id)
			continue
		}
		// Exited meanwhile: keep what it printed; the engine decides
		// whether it runs again.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := r.copyLogs(cctx, c.ID, lf, seam.LogPath(r.opts.DataDir, app, id), false); err != nil {
			r.log.Debug("copy logs", "instance", id, "err", err)
		}
		cancel()
		lf.Close()
	}
	return nil
}
