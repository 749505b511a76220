package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// instanceState is what the runtime keeps about an instance beside its
// container: what Docker does not know because the restarts are ours.
type instanceState struct {
	Created  time.Time `json:"created"`
	Restarts int       `json:"restarts"`
}

func readState(p string) instanceState {
	var st instanceState
	if b, err := os.ReadFile(p); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

// writeState replaces the state file atomically.
func writeState(p string, st *instanceState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// inspect returns the container of instance id, or ErrNotFound when there
// is none this runtime owns.
func (r *Runtime) inspect(ctx context.Context, id string) (*container.InspectResponse, error) {
	if err := seam.ValidName("instance", id); err != nil {
		return nil, fmt.Errorf("instance %q: %w", id, runtime.ErrNotFound)
	}
	res, err := r.cli.ContainerInspect(ctx, r.names.Instance(id), client.ContainerInspectOptions{})
	if isNotFound(err) {
		return nil, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c := &res.Container
	if c.Config == nil || !r.names.Owned(c.Config.Labels) || c.Config.Labels[containers.LabelInstance] != id {
		return nil, fmt.Errorf("instance %s: %w (container %s is not moorage's)", id, runtime.ErrNotFound, r.names.Instance(id))
	}
	if c.State == nil {
		c.State = &container.State{}
	}
	return c, nil
}

// instance describes a container as a runtime.Instance.
func (r *Runtime) instance(c *container.InspectResponse) runtime.Instance {
	in := containers.Instance(c.Config.Labels)
	st := c.State
	if st == nil {
		st = &container.State{}
	}
	sup := r.supervisorOf(in.ID)
	switch {
	case st.Running || st.Paused:
		in.State = runtime.StateRunning
		in.PID = st.Pid
		in.Paused = st.Paused
	case st.Restarting:
		in.State = runtime.StateRestarting
	case sup != nil && sup.isRestarting():
		in.State = runtime.StateRestarting
	default:
		in.State = runtime.StateExited
	}
	if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Year() > 1 {
		in.StartedAt = t
	}
	in.ExitCode = st.ExitCode
	if st.Health != nil {
		in.Health = string(st.Health.Status)
	}
	if sup != nil {
		in.Restarts = sup.restartCount()
	} else {
		in.Restarts = readState(r.statePath(in.ID)).Restarts
	}
	if in.Port > 0 {
		in.Host = strings.TrimPrefix(c.Name, "/")
		if in.Kind == runtime.KindAccessory {
			in.Host = in.Service
		}
		if in.State == runtime.StateRunning {
			in.Addr = r.addr(c, in.Port)
		}
	}
	return in
}

// addr is where the server reaches a running container's port: the
// published 127.0.0.1 port, else its address on the app network.
func (r *Runtime) addr(c *container.InspectResponse, port int) string {
	ns := c.NetworkSettings
	if ns == nil {
		return ""
	}
	if c.Config.Labels[containers.LabelPublish] == "1" {
		p, _ := network.PortFrom(uint16(port), network.TCP)
		for _, b := range ns.Ports[p] {
			if b.HostPort != "" {
				return "127.0.0.1:" + b.HostPort
			}
		}
		return ""
	}
	if ep := ns.Networks[r.names.Network(c.Config.Labels[containers.LabelApp])]; ep != nil && ep.IPAddress.IsValid() {
		return ep.IPAddress.String() + ":" + strconv.Itoa(port)
	}
	return ""
}

// List returns the instances that match f, running or not, sorted by ID.
// One-offs are not listed.
func (r *Runtime) List(ctx context.Context, f runtime.Filter) ([]runtime.Instance, error) {
	if err := r.life.Check(); err != nil {
		return nil, err
	}
	flt := r.names.Filter()
	if f.App != "" {
		flt = flt.Add("label", containers.LabelApp+"="+f.App)
	}
	if f.Service != "" {
		flt = flt.Add("label", containers.LabelService+"="+f.Service)
	}
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: flt})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := []runtime.Instance{}
	for _, c := range res.Items {
		if c.Labels[containers.LabelKind] == string(runtime.KindTask) || c.Labels[containers.LabelInstance] == "" {
			continue
		}
		ci, err := r.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			if isNotFound(err) {
				continue // removed meanwhile
			}
			return nil, err
		}
		if ci.Container.Config == nil || !r.names.Owned(ci.Container.Config.Labels) {
			continue
		}
		in := r.instance(&ci.Container)
		if f.Match(in) {
			out = append(out, in)
		}
	}
	return seam.ByID(out), nil
}

// stop is Stop (seam.Stopper): its stop signal, then SIGKILL after its stop
// timeout (Docker's stop, which ends every process of the container). It
// returns once the container has exited; no restart follows. Stopping an
// exited instance is a no-op.
func (r *Runtime) stop(ctx context.Context, id string) error {
	c, err := r.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	sup := r.supervisorOf(id)
	if sup != nil {
		sup.requestStop()
	}
	if c.State.Paused {
		if _, err := r.cli.ContainerUnpause(ctx, c.ID, client.ContainerUnpauseOptions{}); err != nil {
			r.log.Warn("unpause before stop", "instance", id, "err", err)
		}
	}
	if c.State.Running || c.State.Paused || c.State.Restarting || sup != nil {
		// Timeout nil: the container's own stop timeout and signal.
		if _, err := r.cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{}); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	if sup == nil {
		return nil
	}
	_, err = seam.WaitExit(ctx, r.ctx.Done(), sup.done, nil, id)
	return err
}

// Remove deletes an instance's container, stopping it first if it runs.
// Its logs are kept; named volumes are never removed here.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	unlock := r.ids.Lock(id)
	defer unlock()
	if err := r.stop(ctx, id); err != nil {
		return fmt.Errorf("remove %s: %w", id, errors.Unwrap(err))
	}
	// RemoveVolumes removes the anonymous volumes of the image's VOLUME
	// lines only; named volumes stay.
	_, err := r.cli.ContainerRemove(ctx, r.names.Instance(id), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	_ = os.Remove(r.statePath(id))
	return nil
}

// Logs calls fn for each matching line of instance id, oldest first,
// across the rotated files. Logs stay readable after the container is
// removed. With Follow it keeps streaming until ctx is done or the
// container is removed.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	exists := func(ctx context.Context) bool {
		_, err := r.inspect(ctx, id)
		return err == nil || !errors.Is(err, runtime.ErrNotFound)
	}
	return seam.ReadLogs(ctx, r.life.Check, r.opts.DataDir, id, opts, exists, r.ctx.Done(), fn)
}

// PruneLogs deletes app's log files of instances ret.Keep does not keep
// (see logs.Prune).
func (r *Runtime) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	return seam.PruneLogs(ctx, r.life.Check, r.opts.DataDir, app, ret)
}
