package swarm

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// EnsureVolume checks the volume's name. A swarm volume is created by the
// node that first runs a task mounting it (with the driver and options the
// spec gives, else a local volume there): it lives on that node.
func (r *Runtime) EnsureVolume(ctx context.Context, app, name string) error {
	return seam.Valid(r.life.Check, "app", app, "volume", name)
}

// VolumePath is not available on swarm: a volume lives on a node, not on
// the server. Backups read and restore it on its node (ArchiveVolume,
// ReplaceVolume); static files served from a volume are refused.
func (r *Runtime) VolumePath(ctx context.Context, app, name string) (string, error) {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return "", err
	}
	return "", fmt.Errorf("volume %s of %s lives on a swarm node, not on this server, which cannot read it as a directory: static files served from a volume are not supported on swarm yet (put them in the image): %w", name, app, runtime.ErrNotSupported)
}

// EnsureNetwork creates the app's attachable overlay network, where its
// tasks reach each other (accessories by name) on any node.
func (r *Runtime) EnsureNetwork(ctx context.Context, app string) error {
	if err := seam.Valid(r.life.Check, "app", app); err != nil {
		return err
	}
	r.netMu.Lock()
	defer r.netMu.Unlock()
	name := r.names.Network(app)
	if n, err := r.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		if !r.names.Owned(n.Network.Labels) {
			return fmt.Errorf("a network named %s exists that moorage (prefix %s) does not own; moorage never uses what it did not make: remove it (docker network rm %s), or give this server its own names with --docker-prefix", name, r.opts.Prefix, name)
		}
		return nil
	} else if !isNotFound(err) {
		return err
	}
	_, err := r.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver:     "overlay",
		Attachable: true,
		Labels:     map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: app},
	})
	if err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	return nil
}

// adopt removes the one-offs a dead server left, waiting until their tasks
// have exited, and starts copying the logs of the runtime's services.
func (r *Runtime) adopt(ctx context.Context) error {
	if err := r.refreshNodes(ctx); err != nil {
		return fmt.Errorf("swarm runtime: list nodes: %w", err)
	}
	if err := r.removeLeftoverRuns(ctx); err != nil {
		return err
	}
	svcs, err := r.cli.ServiceList(ctx, client.ServiceListOptions{Filters: r.names.Filter()})
	if err != nil {
		return fmt.Errorf("swarm runtime: list services: %w", err)
	}
	for _, s := range svcs.Items {
		l := s.Spec.Labels
		if s.Spec.Mode.ReplicatedJob != nil {
			r.log.Info("removing a one-off a previous server left", "job", s.Spec.Name)
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			err := r.removeJob(rctx, s.ID)
			cancel()
			if err != nil {
				return fmt.Errorf("swarm runtime: remove the one-off %s a previous server left: %w", s.Spec.Name, err)
			}
			continue
		}
		if l[containers.LabelInstance] != "" && s.Spec.Mode.Replicated != nil {
			r.copyLogs(s.Spec.Name, s.ID, l[containers.LabelApp], l[containers.LabelInstance])
		}
	}
	snap, err := r.read(ctx)
	if err != nil {
		return fmt.Errorf("swarm runtime: list tasks: %w", err)
	}
	r.observe(snap, false)
	return nil
}
