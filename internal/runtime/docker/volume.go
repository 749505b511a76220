package docker

import (
	"context"
	"errors"
	"fmt"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"net/netip"
	"os"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// ErrNotOwned is returned for an object that has the name moorage would
// give it but not its prefix label: moorage never touches it.
var ErrNotOwned = errors.New("exists but is not managed by moorage")

// EnsureVolume creates the named volume <prefix>_<app>_<name> if it does
// not exist.
func (r *Runtime) EnsureVolume(ctx context.Context, app, name string) error {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return err
	}
	vn := r.names.Volume(app, name)
	v, err := r.cli.VolumeInspect(ctx, vn, client.VolumeInspectOptions{})
	if err == nil {
		if !r.names.Owned(v.Volume.Labels) {
			return fmt.Errorf("volume %s %w (no label %s=%s); %s", vn, ErrNotOwned, containers.LabelPrefix, r.opts.Prefix, r.notOwnedFix("volume", vn))
		}
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("volume %s: %w", vn, err)
	}
	_, err = r.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name:   vn,
		Labels: map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: app, containers.LabelVolume: name},
	})
	if err != nil {
		return fmt.Errorf("create volume %s: %w", vn, err)
	}
	r.log.Info("created volume", "volume", vn)
	return nil
}

// VolumePath is the volume's Mountpoint on the host (backups read and
// restore it there).
func (r *Runtime) VolumePath(ctx context.Context, app, name string) (string, error) {
	if err := seam.Valid(r.life.Check, "volume", name); err != nil {
		return "", err
	}
	vn := r.names.Volume(app, name)
	v, err := r.cli.VolumeInspect(ctx, vn, client.VolumeInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("volume %s of %s: %w", name, app, err)
	}
	if !r.names.Owned(v.Volume.Labels) {
		return "", fmt.Errorf("volume %s %w (no label %s=%s); %s", vn, ErrNotOwned, containers.LabelPrefix, r.opts.Prefix, r.notOwnedFix("volume", vn))
	}
	if v.Volume.Mountpoint == "" {
		return "", fmt.Errorf("volume %s has no mount point on this host: %w", vn, runtime.ErrNotSupported)
	}
	return v.Volume.Mountpoint, nil
}

// RemoveVolume deletes app's volume name and its data. Nothing else ever
// removes a volume; it fails while a container uses it.
func (r *Runtime) RemoveVolume(ctx context.Context, app, name string) error {
	if err := seam.Valid(r.life.Check, "volume", name); err != nil {
		return err
	}
	vn := r.names.Volume(app, name)
	v, err := r.cli.VolumeInspect(ctx, vn, client.VolumeInspectOptions{})
	if isNotFound(err) {
		return fmt.Errorf("volume %s of %s: %w", name, app, runtime.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("volume %s of %s: %w", name, app, err)
	}
	if !r.names.Owned(v.Volume.Labels) {
		return fmt.Errorf("volume %s %w (no label %s=%s); %s", vn, ErrNotOwned, containers.LabelPrefix, r.opts.Prefix, r.notOwnedFix("volume", vn))
	}
	if _, err := r.cli.VolumeRemove(ctx, vn, client.VolumeRemoveOptions{}); err != nil {
		if cerrdefs.IsConflict(err) {
			return fmt.Errorf("volume %s is in use (remove the instances that mount it first): %w", vn, err)
		}
		return fmt.Errorf("remove volume %s: %w", vn, err)
	}
	r.log.Info("removed volume", "volume", vn)
	return nil
}

// prepareVolumes makes the fresh volumes of a created container writable
// by the (non-root, numeric) user it runs as: a volume whose mount point is
// empty and owned by root is handed over. A volume with content is left
// as it is.
func (r *Runtime) prepareVolumes(ctx context.Context, p *containerPlan) {
	if p.uid <= 0 {
		return
	}
	app := p.create.Config.Labels[containers.LabelApp]
	for _, name := range p.volumes {
		mp, err := r.VolumePath(ctx, app, name)
		if err != nil {
			r.log.Debug("volume ownership: no mount point", "volume", name, "err", err)
			continue
		}
		if _, err := os.Stat(mp); err != nil {
			r.log.Debug("volume ownership: mount point not reachable from the server", "volume", name, "err", err)
			continue
		}
		changed, err := seam.HandOver(mp, 0, p.uid, p.gid, true)
		if err != nil {
			r.log.Warn("volume ownership: cannot hand a fresh volume to its user", "volume", name, "uid", p.uid, "err", err)
		}
		if !changed {
			continue
		}
		r.log.Info("handed a fresh volume to the user its instances run as", "volume", r.names.Volume(app, name), "uid", p.uid, "gid", p.gid)
	}
}

// EnsureNetwork creates the app's user-defined bridge network
// <prefix>-<app>, on which accessories answer by name.
func (r *Runtime) EnsureNetwork(ctx context.Context, app string) error {
	if err := seam.Valid(r.life.Check, "app", app); err != nil {
		return err
	}
	nn := r.names.Network(app)
	// One at a time: an engine older than API 1.44 creates a second
	// network of the same name instead of failing.
	// Asked every time, not cached: `docker network prune` removes the
	// network of an app whose containers are all gone.
	r.netMu.Lock()
	defer r.netMu.Unlock()
	for attempt := 0; ; attempt++ {
		n, err := r.cli.NetworkInspect(ctx, nn, client.NetworkInspectOptions{})
		if err == nil {
			if !r.names.Owned(n.Network.Labels) {
				return fmt.Errorf("network %s %w (no label %s=%s); %s", nn, ErrNotOwned, containers.LabelPrefix, r.opts.Prefix, r.notOwnedFix("network", nn))
			}
			break
		}
		if !isNotFound(err) {
			return fmt.Errorf("network %s: %w", nn, err)
		}
		_, err = r.cli.NetworkCreate(ctx, nn, client.NetworkCreateOptions{
			Driver: "bridge",
			Labels: map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: app},
		})
		if err == nil {
			r.log.Info("created network", "network", nn)
			break
		}
		if attempt > 0 || !cerrdefs.IsConflict(err) {
			return fmt.Errorf("create network %s: %w", nn, err)
		}
		// Created meanwhile by another server: inspect again.
	}
	return nil
}
