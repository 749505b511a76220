package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Run runs a one-off as a swarm job (a replicated job of one task, restart
// condition none: a failing release task never runs again by itself), with
// the instance's image, env, network and volumes, on whichever node Swarm
// picks. Its output goes to s.Stdout and s.Stderr, its exit code is
// returned, and the job is removed afterwards. s.Timeout and ctx remove it
// early (the error is then ErrTimeout or ctx's). A job a dead server left
// is removed by the next runtime, which waits until its task has exited
// (see New), so two release tasks never run at once.
func (r *Runtime) Run(ctx context.Context, s runtime.RunSpec) (int, error) {
	return r.tasks.Run(r.life.Check, &s, validateSpec, func(id string, fail func(error) (int, error)) (int, error) {
		return r.run(ctx, &s, id, fail)
	})
}

// run is Run once the one-off id has begun (seam.Tasks.Run).
func (r *Runtime) run(ctx context.Context, s *runtime.RunSpec, id string, fail func(error) (int, error)) (int, error) {
	if s.Stdin != nil && !s.TTY {
		// The API hands every one-off a reader: `moorage run` without a
		// terminal sends its stdin, empty but for `moorage run -- cmd <
		// file`. Empty, the one-off is a swarm job like a release task;
		// with input, it needs a container it can be fed to.
		in, data := seam.PeekInput(s.Stdin, seam.InputWait)
		s.Stdin = nil
		if data {
			s.Stdin = in
		}
	}
	if s.TTY || s.Stdin != nil {
		return r.runInteractive(ctx, s, id, fail) // run_interactive.go
	}
	name := r.names.Instance(id)
	if _, err := r.cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{}); err == nil {
		return fail(runtime.ErrExists)
	} else if !isNotFound(err) {
		return fail(err)
	}
	if err := r.EnsureNetwork(ctx, s.App); err != nil {
		return fail(err)
	}
	img, err := r.imageRef(ctx, &s.InstanceSpec)
	if err != nil {
		return fail(err)
	}
	spec, err := r.taskSpec(ctx, &s.InstanceSpec, img, s)
	if err != nil {
		return fail(err)
	}
	auth, err := r.authFor(ctx, img)
	if err != nil {
		return fail(err)
	}
	res, err := r.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec, EncodedRegistryAuth: auth.encoded})
	if err != nil {
		return fail(fmt.Errorf("create job: %w", auth.scrub(err)))
	}
	// Whatever happens, the job goes, and only once its task has exited.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := r.removeJob(rctx, res.ID); err != nil {
			r.log.Warn("removing a one-off's job", "job", name, "err", err)
		}
	}()
	wctx := ctx
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	stdout, stderr := seam.WriterOr(s.Stdout), seam.WriterOr(s.Stderr)
	// Follow the output while it runs; what the stream missed (a short
	// task can end before the stream starts) is read once more at the end.
	// Lines already written are told by their time, per stream: the log
	// stream may pass a stderr line before an earlier stdout line.
	last := map[string]time.Time{}
	write := func(stream string, t time.Time, text []byte) {
		if !t.After(last[stream]) {
			return
		}
		last[stream] = t
		w := stdout
		if stream == "stderr" {
			w = stderr
		}
		w.Write(append(text, '\n'))
	}
	lines := make(chan logLine, 256)
	fctx, fcancel := context.WithCancel(wctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		r.readJobLogs(fctx, res.ID, time.Time{}, true, func(stream string, t time.Time, text []byte) {
			select {
			case lines <- logLine{stream, t, append([]byte(nil), text...)}:
			case <-fctx.Done():
			}
		})
	}()
	task, werr := r.waitJob(wctx, res.ID, lines, write)
	// The task is final (or the wait ended): give the stream a moment to
	// deliver what it has, then read the rest without following.
	drain := time.NewTimer(2 * time.Second)
loop:
	for {
		select {
		case l := <-lines:
			write(l.stream, l.t, l.text)
		case <-followed:
			break loop
		case <-drain.C:
			break loop
		}
	}
	drain.Stop()
	fcancel()
	<-followed
	for {
		select {
		case l := <-lines:
			write(l.stream, l.t, l.text)
			continue
		default:
		}
		break
	}
	if werr != nil {
		if errors.Is(werr, context.DeadlineExceeded) && ctx.Err() == nil {
			return fail(fmt.Errorf("did not finish within %s: %w", s.Timeout, runtime.ErrTimeout))
		}
		return fail(werr)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	since := last["stdout"]
	if t := last["stderr"]; t.Before(since) {
		since = t
	}
	r.readJobLogs(rctx, res.ID, since, false, write)
	cancel()
	code := -1
	if cs := task.Status.ContainerStatus; cs != nil && cs.ContainerID != "" {
		code = cs.ExitCode
	}
	if task.Status.State == swarm.TaskStateRejected || code == -1 && task.Status.State != swarm.TaskStateComplete {
		return fail(fmt.Errorf("its task did not run: %s", r.describeTask(task)))
	}
	if task.Status.State == swarm.TaskStateComplete {
		code = 0
	}
	r.events.Publish(runtime.InstanceEvent{
		Time: time.Now().UTC(), Type: runtime.EventExit, Instance: id, App: s.App, Service: s.Service,
		Release: s.Release, Kind: s.Kind, ExitCode: code, Message: fmt.Sprintf("exit status %d", code),
	})
	return code, nil
}

type logLine struct {
	stream string
	t      time.Time
	text   []byte
}

// waitJob waits until the job's task is final, passing on the lines that
// come meanwhile.
func (r *Runtime) waitJob(ctx context.Context, jobID string, lines <-chan logLine, write func(string, time.Time, []byte)) (swarm.Task, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ts, err := r.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", jobID)})
		if err == nil {
			items := ts.Items
			sortTasks(items)
			if len(items) > 0 && final(items[0].Status.State) {
				return items[0], nil
			}
		} else if ctx.Err() == nil && !isNotFound(err) {
			r.log.Debug("reading a job's task", "err", err)
		}
		select {
		case l := <-lines:
			write(l.stream, l.t, l.text)
		case <-tick.C:
		case <-ctx.Done():
			return swarm.Task{}, ctx.Err()
		}
	}
}

// readJobLogs reads a job's output with Docker's timestamps, from after
// since.
func (r *Runtime) readJobLogs(ctx context.Context, jobID string, since time.Time, follow bool, fn func(stream string, t time.Time, text []byte)) {
	opts := client.ServiceLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: follow}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := r.cli.ServiceLogs(ctx, jobID, opts)
	if err != nil {
		return
	}
	defer rc.Close()
	_ = docker.DemuxLines(rc, fn)
}

// removeJob removes a job and waits until its task has exited. A 20.10
// manager that removes a job leaves its running task alone (the task's
// desired state stays "complete"), so the task's container is stopped on
// its node (Options.Nodes), with the job's stop timeout.
func (r *Runtime) removeJob(ctx context.Context, jobID string) error {
	if _, err := r.cli.ServiceRemove(ctx, jobID, client.ServiceRemoveOptions{}); err != nil && !isNotFound(err) {
		return err
	}
	stopped := map[string]bool{}
	var last error
	for {
		ts, err := r.cli.TaskList(ctx, client.TaskListOptions{})
		if err != nil {
			return err
		}
		live := false
		for _, t := range ts.Items {
			if t.ServiceID != jobID || final(t.Status.State) {
				continue
			}
			live = true
			cs := t.Status.ContainerStatus
			if cs == nil || cs.ContainerID == "" || stopped[cs.ContainerID] {
				continue
			}
			if err := r.stopTaskContainer(ctx, t.NodeID, cs.ContainerID); err != nil {
				last = err
				continue
			}
			stopped[cs.ContainerID] = true
		}
		if !live {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			if last != nil {
				return fmt.Errorf("its task is still running: %w", last)
			}
			return fmt.Errorf("its task is still running: %w", err)
		}
	}
}

// stopTaskContainer stops a task's container through its node's API.
func (r *Runtime) stopTaskContainer(ctx context.Context, nodeID, cid string) error {
	n, ok := r.watch.node(nodeID)
	if !ok {
		if err := r.refreshNodes(ctx); err != nil {
			return err
		}
		if n, ok = r.watch.node(nodeID); !ok {
			return fmt.Errorf("node %s is not in the swarm", nodeID)
		}
	}
	cli, err := r.node(ctx, n.Hostname)
	if err != nil {
		return err
	}
	if _, err := cli.ContainerStop(ctx, cid, client.ContainerStopOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("stop the task's container on %s: %w", n.Hostname, err)
	}
	return nil
}

// task returns the running task of an instance and its node's hostname.
func (r *Runtime) runningTask(ctx context.Context, id string) (swarm.Task, string, error) {
	svc, err := r.cli.ServiceInspect(ctx, r.names.Instance(id), client.ServiceInspectOptions{})
	if isNotFound(err) || (err == nil && !r.names.Owned(svc.Service.Spec.Labels)) {
		return swarm.Task{}, "", runtime.ErrNotFound
	}
	if err != nil {
		return swarm.Task{}, "", err
	}
	ts, err := r.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", svc.Service.ID)})
	if err != nil {
		return swarm.Task{}, "", err
	}
	for _, t := range ts.Items {
		if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning && t.Status.ContainerStatus != nil {
			n, ok := r.watch.node(t.NodeID)
			if !ok {
				if err := r.refreshNodes(ctx); err != nil {
					return swarm.Task{}, "", err
				}
				n, _ = r.watch.node(t.NodeID)
			}
			return t, n.Hostname, nil
		}
	}
	return swarm.Task{}, "", fmt.Errorf("instance is not running")
}

// Exec runs a command in the instance's running task, through its node's
// Docker API (Options.Nodes), with the task's environment plus e.Env.
func (r *Runtime) Exec(ctx context.Context, id string, e runtime.ExecSpec) (int, error) {
	if err := r.life.Check(); err != nil {
		return -1, err
	}
	if len(e.Cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: no command: %w", id, runtime.ErrInvalidSpec)
	}
	t, node, err := r.runningTask(ctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	cli, err := r.node(ctx, node)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	cid := t.Status.ContainerStatus.ContainerID
	c, err := cli.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		return -1, fmt.Errorf("exec in %s on %s: %w", id, node, err)
	}
	var env []string
	if c.Container.Config != nil {
		env = c.Container.Config.Env
	}
	code, err := docker.ExecIn(ctx, cli, cid, env, e)
	if err != nil {
		return -1, fmt.Errorf("exec in %s on %s: %w", id, node, err)
	}
	return code, nil
}

// Pause freezes the instance's task (docker pause on its node).
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.pause(ctx, id, true)
}

// Resume thaws a paused task.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.pause(ctx, id, false)
}

func (r *Runtime) pause(ctx context.Context, id string, pause bool) error {
	verb := "pause"
	if !pause {
		verb = "resume"
	}
	if err := r.life.Check(); err != nil {
		return err
	}
	t, node, err := r.runningTask(ctx, id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	cli, err := r.node(ctx, node)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	cid := t.Status.ContainerStatus.ContainerID
	if pause {
		_, err = cli.ContainerPause(ctx, cid, client.ContainerPauseOptions{})
	} else {
		_, err = cli.ContainerUnpause(ctx, cid, client.ContainerUnpauseOptions{})
	}
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", verb, id, node, err)
	}
	// Record it on the service, where List (and a restarted server) sees it.
	svc, err := r.cli.ServiceInspect(ctx, r.names.Instance(id), client.ServiceInspectOptions{})
	if err != nil {
		return fmt.Errorf("%s %s: record it on the service: %w", verb, id, err)
	}
	spec := svc.Service.Spec
	if pause {
		spec.Labels[labelPaused] = t.ID
	} else if _, ok := spec.Labels[labelPaused]; ok {
		delete(spec.Labels, labelPaused)
	} else {
		return nil
	}
	if err := r.update(ctx, svc.Service.ID, svc.Service.Version, spec); err != nil {
		return fmt.Errorf("%s %s: record it on the service: %w", verb, id, err)
	}
	return nil
}
