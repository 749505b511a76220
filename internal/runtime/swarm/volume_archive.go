package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// labelCopy marks the containers ArchiveVolume creates (never started) to
// read a volume on its node; its value is the volume's name (which holds
// the runtime's prefix and the app: the app's lock serializes them).
const labelCopy = "moorage.volume-copy"

// copyMount is where a volume is mounted in such a container.
const copyMount = "/moorage-volume"

// volumeCopy is a node that has a volume of that name.
type volumeCopy struct {
	node   string // hostname
	shared bool   // a driver or driver options: storage beyond the node
}

// volumeNode picks the node to read volume from: the one node that has
// it; or, when several have it, any of them if it is shared storage
// (a driver, or the local driver with options: NFS, a bind). unknown are
// the nodes without a Docker API, which may hold a copy too.
func volumeNode(volume string, copies []volumeCopy, unknown []string) (string, error) {
	sort.Slice(copies, func(i, j int) bool { return copies[i].node < copies[j].node })
	sort.Strings(unknown)
	shared := len(copies) > 0
	var nodes []string
	for _, c := range copies {
		shared = shared && c.shared
		nodes = append(nodes, c.node)
	}
	switch {
	case len(copies) > 0 && shared:
		return copies[0].node, nil
	case len(unknown) > 0:
		return "", fmt.Errorf("volume %s: no Docker API is known for %s, which may hold a copy of it: give the server --swarm-node NAME=ADDRESS for each", volume, strings.Join(unknown, ", "))
	case len(copies) == 0:
		return "", fmt.Errorf("volume %s is on no node yet (no task that mounts it has run)", volume)
	case len(copies) > 1:
		return "", fmt.Errorf("volume %s has a copy on each of %s (a local volume is a directory of each node that ran a task mounting it): moorage cannot tell which one to back up; give it a driver with shared storage, or back up the one you mean on its node", volume, strings.Join(nodes, ", "))
	}
	return copies[0].node, nil
}

// volumeHolder finds the node to read or replace a volume on (volumeNode,
// among the ready nodes), with its Docker API and the volume as it has it.
func (r *Runtime) volumeHolder(ctx context.Context, name, vname string) (string, *client.Client, volume.Volume, error) {
	if err := r.refreshNodes(ctx); err != nil {
		return "", nil, volume.Volume{}, err
	}
	// A node that is down is not asked: its copy cannot be read, and a
	// volume restored after its node was lost is the one on the node the
	// accessory moved to.
	r.watch.mu.Lock()
	var hosts []string
	for _, n := range r.watch.nodes {
		if n.Ready {
			hosts = append(hosts, n.Hostname)
		}
	}
	r.watch.mu.Unlock()
	var copies []volumeCopy
	var unknown []string
	type held struct {
		cli *client.Client
		vol volume.Volume
	}
	found := map[string]held{}
	for _, h := range hosts {
		cli, err := r.node(ctx, h)
		if errors.Is(err, runtime.ErrNotSupported) {
			unknown = append(unknown, h)
			continue
		} else if err != nil {
			return "", nil, volume.Volume{}, fmt.Errorf("volume %s: %w", name, err)
		}
		v, err := cli.VolumeInspect(ctx, vname, client.VolumeInspectOptions{})
		if isNotFound(err) {
			continue
		} else if err != nil {
			return "", nil, volume.Volume{}, fmt.Errorf("volume %s on %s: %w", name, h, err)
		}
		found[h] = held{cli, v.Volume}
		copies = append(copies, volumeCopy{node: h, shared: sharedVolume(v.Volume)})
	}
	node, err := volumeNode(name, copies, unknown)
	if err != nil {
		return "", nil, volume.Volume{}, err
	}
	return node, found[node].cli, found[node].vol, nil
}

// sharedVolume says whether a volume's storage may be beyond its node: a
// driver other than local, or the local driver with options (NFS, a bind).
func sharedVolume(v volume.Volume) bool {
	return v.Driver != "local" || len(v.Options) > 0
}

// ArchiveVolume reads a volume on the node that holds it, through that
// node's Docker API: a container that mounts it read-only, created and
// never started (the image of a container that mounts it there, else any
// image the node has), is archived with the API's copy (`docker cp`), and
// removed when the stream is closed (or by the next archive of the
// runtime, should the server die first). The writers are the caller's to
// pause.
func (r *Runtime) ArchiveVolume(ctx context.Context, app, name string) (io.ReadCloser, string, error) {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return nil, "", err
	}
	vname := r.names.Volume(app, name)
	node, cli, _, err := r.volumeHolder(ctx, name, vname)
	if err != nil {
		return nil, "", err
	}
	r.removeCopies(ctx, cli, vname)
	img, err := r.copyImage(ctx, cli, vname)
	if err != nil {
		return nil, "", fmt.Errorf("volume %s on %s: %w", name, node, err)
	}
	c, err := r.createCopy(ctx, cli, vname, img, true)
	if err != nil {
		return nil, "", fmt.Errorf("volume %s on %s: a container to read it: %w", name, node, err)
	}
	remove := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(rctx, c, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			r.log.Warn("removing the container that read a volume (the next volume backup retries)", "node", node, "container", shortID(c), "err", err)
		}
	}
	res, err := cli.CopyFromContainer(ctx, c, client.CopyFromContainerOptions{SourcePath: copyMount})
	if err != nil {
		remove()
		return nil, "", fmt.Errorf("volume %s on %s: %w", name, node, err)
	}
	return &copyStream{ReadCloser: res.Content, done: remove}, node, nil
}

// copyStream is a volume's archive; Close removes the container read.
type copyStream struct {
	io.ReadCloser
	done func()
}

func (s *copyStream) Close() error {
	err := s.ReadCloser.Close()
	s.done()
	return err
}

// copyImage is an image the node has, to create a container from: that
// of a container that mounts the volume there, else any.
func (r *Runtime) copyImage(ctx context.Context, cli *client.Client, vname string) (string, error) {
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("volume", vname)})
	if err != nil {
		return "", err
	}
	for _, c := range cs.Items {
		if c.ImageID != "" {
			return c.ImageID, nil
		}
	}
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return "", err
	}
	if len(imgs.Items) == 0 {
		return "", errors.New("the node has no image to create a container from")
	}
	return imgs.Items[0].ID, nil
}

// removeCopies removes the containers an earlier archive of the volume
// left on the node (a server that died while reading).
func (r *Runtime) removeCopies(ctx context.Context, cli *client.Client, vname string) {
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labelCopy+"="+vname)})
	if err != nil {
		return
	}
	for _, c := range cs.Items {
		cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
}

// createCopy creates (never starts) a container of img that mounts the
// volume vname at copyMount, to copy from or into.
func (r *Runtime) createCopy(ctx context.Context, cli *client.Client, vname, img string, readOnly bool) (string, error) {
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: fmt.Sprintf("%s-volume-copy-%d", r.opts.Prefix, time.Now().UnixNano()),
		Config: &container.Config{Image: img, Entrypoint: []string{"/moorage-volume-copy-never-runs"}, NetworkDisabled: true,
			Labels: map[string]string{containers.LabelPrefix: taskPrefix + r.opts.Prefix, labelCopy: vname}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vname, Target: copyMount, ReadOnly: readOnly}}},
	})
	if err != nil {
		return "", err
	}
	return c.ID, nil
}
