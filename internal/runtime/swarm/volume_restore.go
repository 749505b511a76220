package swarm

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// releaseWait bounds how long ReplaceVolume waits for the containers of
// stopped tasks that mount the volume to exit.
const releaseWait = 2 * time.Minute

// ReplaceVolume replaces the content of a volume, on the node that holds
// it, with content: a tar stream (gzip or not) of entries relative to the
// volume's root, as backups hold them, numeric owners kept. Through the
// Docker API the only way to empty a volume is to remove it: it is
// removed and created again on that node with its driver, options and
// labels, its root directory given back its owner and mode, and the
// content is copied into a container (created, never started) that mounts
// it (without the API's CopyUIDGID, which would give every file the
// container user's owner: the daemon keeps the archive's numeric owners).
// A volume on shared storage is refused: removing it would not empty
// the storage. Nothing may run with the volume mounted (the caller stops
// what does); the exited containers of the runtime's tasks that still
// name it are removed.
func (r *Runtime) ReplaceVolume(ctx context.Context, app, name string, content io.Reader) (string, error) {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return "", err
	}
	vname := r.names.Volume(app, name)
	node, cli, vol, err := r.volumeHolder(ctx, name, vname)
	if err != nil {
		return "", err
	}
	if sharedVolume(vol) {
		return node, fmt.Errorf("volume %s is on storage beyond its node (driver %s, options %v): restoring it is not supported on swarm yet; restore it on that storage by hand: %w", name, vol.Driver, vol.Options, runtime.ErrNotSupported)
	}
	fail := func(what string, err error) (string, error) {
		return node, fmt.Errorf("volume %s on %s: %s: %w", name, node, what, err)
	}
	r.removeCopies(ctx, cli, vname)
	img, err := r.copyImage(ctx, cli, vname)
	if err != nil {
		return fail("an image to copy with", err)
	}
	root, err := r.volumeRoot(ctx, cli, vname, img)
	if err != nil {
		return fail("read its root directory", err)
	}
	if err := r.releaseVolume(ctx, cli, vname); err != nil {
		return fail("release it", err)
	}
	if _, err := cli.VolumeRemove(ctx, vname, client.VolumeRemoveOptions{}); err != nil && !isNotFound(err) {
		return fail("remove it", err)
	}
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vname, Driver: vol.Driver, DriverOpts: vol.Options, Labels: vol.Labels}); err != nil {
		return fail("create it again", err)
	}
	c, err := r.createCopy(ctx, cli, vname, img, false)
	if err != nil {
		return fail("a container to fill it", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(rctx, c, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			r.log.Warn("removing the container that filled a volume (the next volume backup or restore retries)", "node", node, "container", shortID(c), "err", err)
		}
	}()
	if _, err := cli.CopyToContainer(ctx, c, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(root)}); err != nil {
		return fail("give its root directory its owner and mode", err)
	}
	if _, err := cli.CopyToContainer(ctx, c, client.CopyToContainerOptions{DestinationPath: copyMount, Content: content}); err != nil {
		return fail("copy the content in", err)
	}
	return node, nil
}

// volumeRoot reads the owner and mode of the volume's root directory and
// returns them as a tar stream of that one directory, named as it is
// mounted in a copy container (copyMount).
func (r *Runtime) volumeRoot(ctx context.Context, cli *client.Client, vname, img string) ([]byte, error) {
	c, err := r.createCopy(ctx, cli, vname, img, true)
	if err != nil {
		return nil, err
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), c, client.ContainerRemoveOptions{Force: true})
	res, err := cli.CopyFromContainer(ctx, c, client.CopyFromContainerOptions{SourcePath: copyMount})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	hdr, err := tar.NewReader(res.Content).Next()
	if err != nil {
		return nil, err
	}
	if hdr.Typeflag != tar.TypeDir {
		return nil, fmt.Errorf("the archive of %s starts with %s, not its directory", copyMount, hdr.Name)
	}
	return rootTar(hdr), nil
}

// rootTar is a tar stream of one directory entry, named copyMount (less
// its leading slash), with hdr's owner and mode.
func rootTar(hdr *tar.Header) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(path.Clean(copyMount), "/") + "/",
		Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime})
	tw.Close()
	return b.Bytes()
}

// releaseVolume waits until no running container on the node mounts the
// volume, and removes the exited ones of the runtime's tasks that still
// name it (a stopped accessory's), so that the volume can be removed. A
// container moorage did not make that names it is an error.
func (r *Runtime) releaseVolume(ctx context.Context, cli *client.Client, vname string) error {
	ctx, cancel := context.WithTimeout(ctx, releaseWait)
	defer cancel()
	for {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("volume", vname)})
		if err != nil {
			return err
		}
		var running []string
		for _, c := range cs.Items {
			name := strings.TrimPrefix(strings.Join(c.Names, ","), "/")
			if c.Labels[containers.LabelPrefix] != taskPrefix+r.opts.Prefix {
				return fmt.Errorf("container %s, which moorage did not make, mounts it: remove it first", name)
			}
			switch c.State {
			case "running", "paused", "restarting", "removing":
				running = append(running, name)
				continue
			}
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{}); err != nil && !isNotFound(err) {
				return fmt.Errorf("remove the exited container %s that names it: %w", name, err)
			}
		}
		if len(cs.Items) == 0 {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			if len(running) > 0 {
				return fmt.Errorf("still mounted by %s after %s (stop what mounts it)", strings.Join(running, ", "), releaseWait)
			}
			return err
		}
	}
}
