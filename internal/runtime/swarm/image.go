package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/imagepush"
)

// Build builds the release's image on the manager (the docker runtime's
// builder: BuildKit or the Engine API, build.command first), then ships it
// by image ID to every ready node (Options.Nodes): `docker save` on the
// manager, `docker load` on the node, and a check that the node has that
// exact ID. Services name the ID, never a tag, so every node runs the same
// bytes, and a node that lacks the image refuses the task rather than run
// something else. The builder also keeps the upload's "./dir" host paths
// with the release, and their files become Swarm configs (files.go).
func (r *Runtime) Build(ctx context.Context, req runtime.BuildRequest) (runtime.Artifact, error) {
	if err := r.life.Check(); err != nil {
		return runtime.Artifact{}, err
	}
	a, err := r.builder.Build(ctx, req)
	if err != nil {
		return runtime.Artifact{}, err
	}
	a.Runtime = Name
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	var err2 error
	if r.opts.Registry != "" {
		_, err2 = r.push(ctx, req.App, req.Release, a.Ref, out)
	} else {
		err2 = r.ship(ctx, a.Ref, out)
	}
	if err2 == nil && a.Files != "" {
		err2 = r.keepConfigs(ctx, req.App, a.Files, out)
	}
	if err2 != nil {
		r.builder.RemoveArtifact(context.WithoutCancel(ctx), r.builderArtifact(a))
		return runtime.Artifact{}, fmt.Errorf("build %s %s: %w: %w", req.App, req.Release, err2, runtime.ErrBuild)
	}
	r.sweepConfigs(ctx, req.App)
	return a, nil
}

// builderArtifact is an artifact as the builder knows it.
func (r *Runtime) builderArtifact(a runtime.Artifact) runtime.Artifact {
	a.Runtime = docker.Name
	return a
}

// ship loads the image id on every ready node that lacks it.
func (r *Runtime) ship(ctx context.Context, id string, out io.Writer) error {
	if err := r.refreshNodes(ctx); err != nil {
		return err
	}
	r.watch.mu.Lock()
	var targets, unknown []string
	for nid, n := range r.watch.nodes {
		if nid == r.self || !n.Ready {
			continue
		}
		r.mu.Lock()
		_, ok := r.nodes[n.Hostname]
		r.mu.Unlock()
		if ok {
			targets = append(targets, n.Hostname)
		} else {
			unknown = append(unknown, n.Hostname)
		}
	}
	r.watch.mu.Unlock()
	sort.Strings(targets)
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return fmt.Errorf("the image must reach every node, and no Docker API is known for %s: give the server --swarm-node NAME=ADDRESS for each (unix://, tcp:// or ssh://), or drain those nodes (docker node update --availability drain NAME)", strings.Join(unknown, ", "))
	}
	begin := time.Now()
	var (
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
		copied []string
	)
	for _, name := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			did, err := r.shipTo(ctx, name, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("ship the image to %s: %w", name, err))
			} else if did {
				copied = append(copied, name)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(copied) > 0 {
		sort.Strings(copied)
		fmt.Fprintf(out, "shipped image %s to %s in %s\n", shortID(strings.TrimPrefix(id, "sha256:")), strings.Join(copied, ", "), time.Since(begin).Round(time.Millisecond))
	}
	return nil
}

// shipTo loads the image on one node unless it has it; did says whether it
// was copied.
func (r *Runtime) shipTo(ctx context.Context, node, id string) (did bool, err error) {
	cli, err := r.node(ctx, node)
	if err != nil {
		return false, err
	}
	if _, err := cli.ImageInspect(ctx, id); err == nil {
		return false, nil
	}
	save, err := r.cli.ImageSave(ctx, []string{id})
	if err != nil {
		return false, fmt.Errorf("save on the manager: %w", err)
	}
	defer save.Close()
	res, err := cli.ImageLoad(ctx, save, client.ImageLoadWithQuiet(true))
	if err != nil {
		return false, fmt.Errorf("load: %w", err)
	}
	err = imagepush.StreamError(res)
	res.Close()
	if err != nil {
		return false, fmt.Errorf("load: %w", err)
	}
	if _, err := cli.ImageInspect(ctx, id); err != nil {
		return false, fmt.Errorf("the node has no image %s after the load: %w", id, err)
	}
	return true, nil
}

// imageRef is the image a service names: the release's image ID, or an
// accessory's image as the spec names it (start ships it to the node the
// accessory is pinned to: accessoryImage).
func (r *Runtime) imageRef(ctx context.Context, s *runtime.InstanceSpec) (string, error) {
	if s.Kind == runtime.KindAccessory && s.Image != "" {
		return s.Image, nil
	}
	ref, err := r.managerImage(ctx, s)
	if err != nil {
		return "", err
	}
	if r.opts.Registry != "" {
		return r.push(ctx, s.App, s.Release, ref, io.Discard)
	}
	// A node that was down when the release was built gets the image now.
	if err := r.ship(ctx, ref, io.Discard); err != nil {
		return "", err
	}
	return ref, nil
}

// RemoveArtifact removes a release's image from the manager and every
// node (a node still running it keeps it).
func (r *Runtime) RemoveArtifact(ctx context.Context, a runtime.Artifact) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	if a.Runtime != "" && a.Runtime != Name {
		return fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	for _, name := range r.nodeNames() {
		cli, err := r.node(ctx, name)
		if err != nil || cli == r.cli {
			continue
		}
		err = r.whenReaped(ctx, cli, a.Ref, func() error {
			_, err := cli.ImageRemove(ctx, a.Ref, client.ImageRemoveOptions{PruneChildren: true})
			if isNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			r.log.Info("image left on a node", "node", name, "image", a.Ref, "err", err)
		}
	}
	// The registry's tags on the manager go first (what the registry
	// holds stays: registries collect their own garbage).
	if r.opts.Registry != "" {
		if img, err := r.cli.ImageInspect(ctx, a.Ref); err == nil {
			for _, t := range img.RepoTags {
				if strings.HasPrefix(t, strings.TrimSuffix(r.opts.Registry, "/")+"/") {
					if _, err := r.cli.ImageRemove(ctx, t, client.ImageRemoveOptions{}); err != nil && !isNotFound(err) {
						r.log.Info("registry tag left on the manager", "tag", t, "err", err)
					}
				}
			}
		}
	}
	err := r.whenReaped(ctx, r.cli, a.Ref, func() error { return r.builder.RemoveArtifact(ctx, r.builderArtifact(a)) })
	// The release's kept files go first (an image still in use stays):
	// the configs no other release has go with them.
	if app, _, ok := strings.Cut(a.Files, "/"); ok {
		r.sweepConfigs(ctx, app)
	}
	return err
}

// reapWait bounds how long an image removal waits for the containers of
// removed services to go.
const reapWait = 30 * time.Second

// whenReaped runs remove, and again while the only containers that keep
// the image are those of tasks whose service is gone. A node's agent
// deletes such a container some time after the service (a job's, after a
// minute and more on 20.10), so an exited one is removed here at once: it
// is what the agent would do. A container of a service that still exists,
// or of anything else, is a real conflict, returned at once.
func (r *Runtime) whenReaped(ctx context.Context, cli *client.Client, ref string, remove func() error) error {
	deadline := time.Now().Add(reapWait)
	for {
		err := remove()
		if err == nil || !cerrdefs.IsConflict(err) || time.Now().After(deadline) {
			return err
		}
		if !r.reapOrphans(ctx, cli, ref) {
			return err
		}
		if sleep(ctx, 250*time.Millisecond) != nil {
			return err
		}
	}
}

// reapOrphans removes the exited containers on a node that use the image
// and belong to tasks of services the manager no longer has. It reports
// whether those were the only containers using the image (the others,
// still running, are being stopped by their agent).
func (r *Runtime) reapOrphans(ctx context.Context, cli *client.Client, ref string) bool {
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("ancestor", ref)})
	if err != nil {
		return false
	}
	for _, c := range cs.Items {
		svc := c.Labels["com.docker.swarm.service.id"]
		if svc == "" {
			return false
		}
		if _, err := r.cli.ServiceInspect(ctx, svc, client.ServiceInspectOptions{}); !isNotFound(err) {
			return false
		}
		if c.State == "running" || c.State == "restarting" {
			continue
		}
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			r.log.Info("removing the container of a removed service", "container", shortID(c.ID), "err", err)
		}
	}
	return true
}

// ArtifactExists reports whether the release's image is still on the
// manager.
func (r *Runtime) ArtifactExists(ctx context.Context, a runtime.Artifact) (bool, error) {
	if err := r.life.Check(); err != nil {
		return false, err
	}
	if a.Runtime != "" && a.Runtime != Name {
		return false, fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	return r.builder.ArtifactExists(ctx, r.builderArtifact(a))
}

// ArtifactSize is the image's size.
func (r *Runtime) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	return r.builder.ArtifactSize(ctx, r.builderArtifact(a))
}

// repo is the registry repository of an app's images.
func (r *Runtime) repo(app string) string { return imagepush.Repo(r.opts.Registry, r.opts.Prefix, app) }

// push puts the image id into the registry (Options.Registry) as
// <repo>:<release>, unless it is there already, and returns the reference
// services name: <repo>@sha256:<manifest digest>, the same bytes on every
// node whatever the tag later points at. The push carries the login of
// the registry's host (`moorage registry login`), if any; an anonymous
// push still carries X-Registry-Auth (an empty credential, base64 of
// "{}"): a 20.10 engine refuses one without.
func (r *Runtime) push(ctx context.Context, app, release, id string, out io.Writer) (string, error) {
	return imagepush.Push(ctx, r.cli, r.repo(app), release, id, func(ctx context.Context, tag string) (string, func(string, error) error, error) {
		auth, err := r.authFor(ctx, tag)
		if err != nil {
			return "", nil, err
		}
		return auth.pushHeader(), auth.pushError, nil
	}, out)
}
