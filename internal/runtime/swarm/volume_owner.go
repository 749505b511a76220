package swarm

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// handOverVolumes gives the fresh local volumes a pinned instance (an
// accessory, a singleton) mounts to the numeric non-root user it runs as,
// on its node, before its service is created: what the docker runtime
// does on its host (a volume whose root is empty and root's is handed
// over; one with content is left as it is). Docker makes a volume at a
// path the image does not have as root's 0755, where a non-root user
// (Postgres's initdb as uid 70, Redis as 999) cannot write. The volume is
// created on the node with the labels the service's mount gives it, and
// its root directory's owner is set through a container created there
// (never started), as ReplaceVolume does. Volumes with a driver or
// options (shared storage) are left alone, and so is everything when no
// Docker API is configured for the node (said in the log). Any other
// failure fails the start, saying which volume and why: an instance
// started on a volume it cannot write fails later, and less clearly.
func (r *Runtime) handOverVolumes(ctx context.Context, s *runtime.InstanceSpec, nodeID, img string) error {
	var vols []runtime.Mount
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Name, "./") || seam.IsHostPath(m.Name) || m.Driver != "" || len(m.DriverOpts) > 0 {
			continue
		}
		vols = append(vols, m)
	}
	if len(vols) == 0 {
		return nil
	}
	uid, gid := r.instanceUser(ctx, s, img)
	if uid <= 0 {
		return nil
	}
	n, ok := r.watch.node(nodeID)
	if !ok {
		// pinNode chose the node among the watch's a moment ago.
		return fmt.Errorf("node %s, which instance %s is pinned to, has left the swarm: deploy again", nodeID, s.ID())
	}
	cli, err := r.node(ctx, n.Hostname)
	if errors.Is(err, runtime.ErrNotSupported) {
		r.log.Info("volume ownership: no Docker API for the instance's node, its fresh volumes stay as Docker makes them", "instance", s.ID(), "node", n.Hostname, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("the fresh volumes of %s must be handed to uid %d, the user it runs as, on node %s: %w", s.ID(), uid, n.Hostname, err)
	}
	for _, m := range vols {
		vname := r.names.Volume(s.App, m.Name)
		labels := map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: s.App, containers.LabelVolume: m.Name}
		changed, err := r.handOver(ctx, cli, vname, labels, uid, gid, img)
		if err != nil {
			return fmt.Errorf("volume %s on node %s: hand its fresh root directory to uid %d, the user %s runs as, who could not write to it otherwise: %w", vname, n.Hostname, uid, s.ID(), err)
		}
		if changed {
			r.log.Info("handed a fresh volume to the user its instances run as", "volume", vname, "node", n.Hostname, "uid", uid, "gid", gid)
		}
	}
	return nil
}

// instanceUser is the numeric user an instance runs as: the spec's, else
// its image's as the manager has it; -1 when not numeric or not known.
func (r *Runtime) instanceUser(ctx context.Context, s *runtime.InstanceSpec, img string) (int, int) {
	user := s.User
	if user == "" {
		ref := img
		if s.Kind == runtime.KindAccessory && s.Image != "" {
			ref = s.Image
		}
		ii, err := r.cli.ImageInspect(ctx, ref)
		if err != nil || ii.Config == nil {
			return -1, -1
		}
		user = ii.Config.User
	}
	return containers.NumericUser(user)
}

// handOver creates the volume vname on the node of cli if it is not
// there, and gives its root directory to uid:gid when it is empty and
// root's, through a container of img (handOverContainer). It reports
// whether it did.
func (r *Runtime) handOver(ctx context.Context, cli *client.Client, vname string, labels map[string]string, uid, gid int, img string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := cli.VolumeInspect(ctx, vname, client.VolumeInspectOptions{}); isNotFound(err) {
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vname, Driver: "local", Labels: labels}); err != nil {
			return false, fmt.Errorf("create it: %w", err)
		}
	} else if err != nil {
		return false, err
	}
	c, err := r.handOverContainer(ctx, cli, vname, img)
	if err != nil {
		return false, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(rctx, c, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			r.log.Warn("removing the container that read a volume's owner", "container", shortID(c), "err", err)
		}
	}()
	res, err := cli.CopyFromContainer(ctx, c, client.CopyFromContainerOptions{SourcePath: copyMount})
	if err != nil {
		return false, err
	}
	defer res.Content.Close()
	hdr, fresh, err := freshRoot(res.Content)
	if err != nil || !fresh {
		return false, err
	}
	root := rootTar(&tar.Header{Mode: hdr.Mode, Uid: uid, Gid: gid, ModTime: hdr.ModTime})
	if _, err := cli.CopyToContainer(ctx, c, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(root)}); err != nil {
		return false, fmt.Errorf("give its root directory to %d:%d: %w", uid, gid, err)
	}
	return true, nil
}

// handOverContainer creates (never starts) the container through which
// handOver reads and sets the owner of volume vname: from the instance's
// image img when the node has it, else from any image the node has. An
// image removed between that choice and the create (a prune of another
// release) is chosen again.
func (r *Runtime) handOverContainer(ctx context.Context, cli *client.Client, vname, img string) (string, error) {
	var err error
	for range 3 {
		var from string
		if ii, ierr := cli.ImageInspect(ctx, img); ierr == nil {
			from = ii.ID
		} else if from, err = r.copyImage(ctx, cli, vname); err != nil {
			return "", fmt.Errorf("an image to create a container with: %w", err)
		}
		var c string
		if c, err = r.createCopy(ctx, cli, vname, from, false); !isNotFound(err) {
			return c, err
		}
	}
	return "", err
}

// freshRoot reads a tar stream of a volume's root directory (`docker cp`
// of its mount point) and reports whether it is fresh: empty and root's.
// It returns the directory's header.
func freshRoot(rd io.Reader) (*tar.Header, bool, error) {
	tr := tar.NewReader(rd)
	hdr, err := tr.Next()
	if err != nil {
		return nil, false, fmt.Errorf("read its root directory: %w", err)
	}
	if hdr.Typeflag != tar.TypeDir {
		return nil, false, fmt.Errorf("the archive of %s starts with %s, not its directory", copyMount, hdr.Name)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		return hdr, false, nil // content (or an unreadable archive): left as it is
	}
	return hdr, hdr.Uid == 0, nil
}
