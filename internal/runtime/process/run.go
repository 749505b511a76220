//go:build linux

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// Exec runs a command with a running instance's environment (read from
// the process itself, plus e.Env), in its working directory, as its user,
// and returns its exit code. $VAR and ${VAR} in the command are expanded
// from that environment. Cancelling ctx kills it.
func (r *Runtime) Exec(ctx context.Context, id string, e runtime.ExecSpec) (int, error) {
	if err := r.life.Check(); err != nil {
		return -1, err
	}
	if len(e.Cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: %w", id, errNoCommand)
	}
	rec, st, _, err := r.observe(id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if st.State != runtime.StateRunning || st.PID == 0 {
		return -1, fmt.Errorf("exec in %s: instance is %s, not running", id, st.State)
	}
	env, err := processEnv(ctx, st.PID, st.PIDStart)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: read its environment: %w", id, err)
	}
	env = runtime.Merge(env, e.Env)
	path, args, err := command(e.Cmd, env, rec.Dir)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	c := &exec.Cmd{Path: path, Args: args, Env: runtime.EnvList(env), Dir: rec.Dir}
	res, err := runGroup(ctx, c, groupIO{Stdin: e.Stdin, Stdout: e.Stdout, Stderr: e.Stderr, Cred: processCredential(st.PID)}, 0, nil)
	if err != nil {
		return res.code, fmt.Errorf("exec in %s: %w", id, err)
	}
	return res.code, nil
}

// Pause stops every process of a running instance with SIGSTOP to its
// process group, and returns once every thread of every one of them has
// stopped: kill(2) only queues the signal, and until the group stop
// completes the instance's other threads go on running (and answering,
// and writing). The shim does not count a stopped child as crashed.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	pgid, err := r.signalGroup(id, syscall.SIGSTOP)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, pauseTimeout)
	defer cancel()
	for !groupStopped(pgid) {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
			return fmt.Errorf("pause %s: its processes did not all stop: %w", id, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// pauseTimeout bounds how long Pause waits for a group stop to complete.
const pauseTimeout = 10 * time.Second

// Resume continues a paused instance.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.signalGroup(id, syscall.SIGCONT)
	return err
}

// signalGroup sends sig to the process group of a running instance and
// returns the group's id.
func (r *Runtime) signalGroup(id string, sig syscall.Signal) (int, error) {
	if err := r.life.Check(); err != nil {
		return 0, err
	}
	_, st, _, err := r.observe(id)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", signalName(sig), id, err)
	}
	if st.State != runtime.StateRunning || st.PID == 0 || !alive(st.PID, st.PIDStart) {
		return 0, fmt.Errorf("%s %s: instance is %s, not running", signalName(sig), id, st.State)
	}
	pgid := st.PGID
	if pgid == 0 {
		pgid = st.PID
	}
	if err := syscall.Kill(-pgid, sig); err != nil {
		return 0, fmt.Errorf("%s %s: %w", signalName(sig), id, err)
	}
	return pgid, nil
}

// processEnv reads the environment of process pid (started at start) from
// /proc/<pid>/environ. A process in execve has none to read for a moment
// (see procStat.EnvEnd): an instance whose command is a shell that ends
// with `exec app`, just started, or a wrapper that execs the next one.
// Read then, an Exec would run with no PATH (or none of the instance's
// variables), so it waits for the new program, up to execSettle or ctx.
func processEnv(ctx context.Context, pid int, start uint64) (map[string]string, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/environ"
	deadline := time.Now().Add(execSettle)
	empty := 0
	for {
		before, _ := readStat(pid)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		after, err := readStat(pid)
		if err != nil || after.dead() || (start != 0 && after.Start != start) {
			return nil, errors.New("the process is gone")
		}
		if len(b) > 0 {
			env := map[string]string{}
			for _, kv := range bytes.Split(b, []byte{0}) {
				if k, v, ok := strings.Cut(string(kv), "="); ok && k != "" {
					env[k] = v
				}
			}
			return env, nil
		}
		// Empty: an environment that is empty, or one not laid out yet.
		// Only an empty one reads so with the program's layout in place
		// (EnvEnd set, the same) before and after, sample after sample: a
		// program that execs another right away can show a new layout
		// just after its environment read empty.
		if before.EnvEnd != 0 && before.EnvEnd == after.EnvEnd {
			empty++
		} else {
			empty = 0
		}
		if empty == emptySamples {
			return map[string]string{}, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("it is still starting a program (execve)")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// execSettle bounds how long processEnv waits for a process in execve;
// emptySamples is how many times in a row it reads an environment empty
// before it takes it to be.
const (
	execSettle   = 5 * time.Second
	emptySamples = 10
)

// Run runs a one-off instance to completion as a direct child in its own
// process group, streaming its output, and returns its exit code. The
// environment follows Start's rules (PORT only when s.Port is set). s.Timeout
// and ctx kill the whole group (the error is then ErrTimeout or ctx's).
// While it runs it is recorded in the state directory, so that a server
// restarted after a crash kills it (see New).
func (r *Runtime) Run(ctx context.Context, s runtime.RunSpec) (int, error) {
	return r.tasks.Run(r.life.Check, &s, validateSpec, func(id string, fail func(error) (int, error)) (int, error) {
		return r.run(ctx, &s, id, fail)
	})
}

// run is Run once the one-off id has begun (seam.Tasks.Run).
func (r *Runtime) run(ctx context.Context, s *runtime.RunSpec, id string, fail func(error) (int, error)) (int, error) {
	if _, err := os.Stat(r.instanceDir(id)); err == nil {
		return fail(runtime.ErrExists)
	}
	recPath := filepath.Join(r.taskDir, id+".json")
	if _, err := os.Stat(recPath); err == nil {
		return fail(runtime.ErrExists)
	}

	cred, group, err := r.credentialFor(&s.InstanceSpec)
	if err != nil {
		return fail(err)
	}
	cwd, err := r.workdir(&s.InstanceSpec, group)
	if err != nil {
		return fail(err)
	}
	if err := reachable(cwd, cred); err != nil {
		return fail(err)
	}
	tmp, err := r.tmpDir("task-"+id, cred)
	if err != nil {
		return fail(fmt.Errorf("temporary directory: %w", err))
	}
	defer os.RemoveAll(tmp)
	env, err := r.instanceEnv(&s.InstanceSpec, s.Port, cred, group, "", tmp)
	if err != nil {
		return fail(err)
	}
	path, args, err := command(s.Command, env, cwd)
	if err != nil {
		return fail(err)
	}
	cmd := &exec.Cmd{Path: path, Args: args, Env: runtime.EnvList(env), Dir: cwd}
	gio := groupIO{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, TTY: s.TTY, Size: s.Size, Resize: s.Resize, Cred: cred.sys()}
	liveTasks.Store(recPath, struct{}{})
	res, err := runGroup(ctx, cmd, gio, s.Timeout, r.recordTask(recPath, id))
	_ = os.Remove(recPath)
	liveTasks.Delete(recPath)

	ev := eventFor(&s.InstanceSpec)
	ev.Time, ev.Type, ev.ExitCode, ev.Message = time.Now().UTC(), runtime.EventExit, res.code, res.msg
	if err != nil {
		ev.Message = err.Error()
	}
	r.events.Publish(ev)
	if err != nil {
		return res.code, fmt.Errorf("run %s: %w", id, err)
	}
	return res.code, nil
}

// recordTask returns runGroup's started callback that records the group
// at recPath, so that a server restarted after a crash kills it.
func (r *Runtime) recordTask(recPath, id string) func(pid int) {
	return func(pid int) {
		st, _ := readStat(pid)
		rec := taskRecord{ID: id, PID: pid, PIDStart: st.Start, PGID: pid, SID: st.SID,
			ServerPID: os.Getpid(), Started: time.Now().UTC()}
		if err := writeJSON(recPath, &rec); err != nil {
			r.log.Warn("record one-off", "task", id, "err", err)
		}
	}
}

// liveTasks holds the task records of the one-offs (and builds) this
// process runs.
var liveTasks sync.Map // record path → struct{}

// killOrphanTasks kills the one-offs and builds a crashed server left
// running.
func (r *Runtime) killOrphanTasks() {
	ents, err := os.ReadDir(r.taskDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(r.taskDir, e.Name())
		var rec taskRecord
		if err := readJSON(p, &rec); err == nil && rec.PGID > 0 {
			if _, ok := liveTasks.Load(p); ok {
				continue // another runtime of this very process runs it
			}
			if alive(rec.PID, rec.PIDStart) || len(groupMembers(rec.PGID)) > 0 {
				r.log.Warn("killing a one-off left by a previous server", "task", rec.ID, "pid", rec.PID)
			}
			killOrphans(rec.PGID, rec.SID, rec.PID, rec.PIDStart, 5*time.Second)
		}
		_ = os.Remove(p)
	}
}
