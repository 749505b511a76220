package kubernetes

import (
	"context"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/imagepush"
)

// anonymousAuth is X-Registry-Auth without credentials: base64 of "{}".
const anonymousAuth = "e30="

// Build builds the release's image with the docker runtime's builder
// (Options.DockerHost) and pushes it to Options.Registry, where the nodes
// pull it by digest. The artifact's Ref is the image ID on the builder's
// engine; Start names the registry's digest of it.
func (r *Runtime) Build(ctx context.Context, req runtime.BuildRequest) (runtime.Artifact, error) {
	if err := r.life.Check(); err != nil {
		return runtime.Artifact{}, err
	}
	if r.opts.Registry == "" {
		return runtime.Artifact{}, fmt.Errorf("build %s %s: the kubernetes runtime needs a registry its nodes pull from to run an image built here: give the server --kube-registry HOST[:PORT][/PATH], or set image: in the spec: %w", req.App, req.Release, runtime.ErrBuild)
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
	if _, err := r.push(ctx, req.App, req.Release, a.Ref, out); err != nil {
		r.builder.RemoveArtifact(context.WithoutCancel(ctx), builderArtifact(a))
		return runtime.Artifact{}, fmt.Errorf("build %s %s: %w: %w", req.App, req.Release, err, runtime.ErrBuild)
	}
	return a, nil
}

// push puts image id into the registry and returns its digest reference.
func (r *Runtime) push(ctx context.Context, app, release, id string, out io.Writer) (string, error) {
	return imagepush.Push(ctx, r.docker, imagepush.Repo(r.opts.Registry, r.opts.Prefix, app), release, id,
		func(context.Context, string) (string, func(string, error) error, error) {
			return anonymousAuth, func(tag string, err error) error {
				return fmt.Errorf("push %s: %w (the registry must be reachable from the builder's engine, and trusted: a plain-HTTP registry off loopback needs insecure-registries in its daemon.json)", tag, err)
			}, nil
		}, out)
}

// builderArtifact is an artifact as the builder knows it.
func builderArtifact(a runtime.Artifact) runtime.Artifact {
	a.Runtime = docker.Name
	return a
}

// imageRef is the image an instance's pod names: an accessory's image as
// the spec names it, or the release's image by its registry digest.
func (r *Runtime) imageRef(ctx context.Context, s *runtime.InstanceSpec) (string, error) {
	if s.Image != "" && s.Image != s.Artifact.Ref {
		return s.Image, nil
	}
	if s.Artifact.Runtime != "" && s.Artifact.Runtime != Name {
		return "", fmt.Errorf("%s: artifact of runtime %q: %w", s.ID(), s.Artifact.Runtime, runtime.ErrInvalidSpec)
	}
	ok, err := r.builder.ArtifactExists(ctx, builderArtifact(s.Artifact))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%s: image %s: %w", s.ID(), s.Artifact.Ref, runtime.ErrArtifactGone)
	}
	if r.opts.Registry == "" {
		return "", fmt.Errorf("%s: no registry to run image %s from: give the server --kube-registry: %w", s.ID(), s.Artifact.Ref, runtime.ErrNotSupported)
	}
	return r.push(ctx, s.App, s.Release, s.Artifact.Ref, io.Discard)
}

// RemoveArtifact removes a release's image from the builder's engine, its
// registry tags first (what the registry holds stays: registries collect
// their own garbage).
func (r *Runtime) RemoveArtifact(ctx context.Context, a runtime.Artifact) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	if a.Runtime != "" && a.Runtime != Name {
		return fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	if img, err := r.docker.ImageInspect(ctx, a.Ref); err == nil && r.opts.Registry != "" {
		for _, t := range img.RepoTags {
			if strings.HasPrefix(t, strings.TrimSuffix(r.opts.Registry, "/")+"/") {
				if _, err := r.docker.ImageRemove(ctx, t, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
					r.log.Info("registry tag left on the builder", "tag", t, "err", err)
				}
			}
		}
	}
	return r.builder.RemoveArtifact(ctx, builderArtifact(a))
}

// ArtifactExists reports whether the release's image is still on the
// builder's engine.
func (r *Runtime) ArtifactExists(ctx context.Context, a runtime.Artifact) (bool, error) {
	if err := r.life.Check(); err != nil {
		return false, err
	}
	if a.Runtime != "" && a.Runtime != Name {
		return false, fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	return r.builder.ArtifactExists(ctx, builderArtifact(a))
}

// ArtifactSize is the image's size.
func (r *Runtime) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	return r.builder.ArtifactSize(ctx, builderArtifact(a))
}

// checkFiles refuses the "./dir" host paths of an upload before the image
// is built: a pod mounts volumes, never a directory of the server.
func checkFiles(root string, paths []string) error {
	if len(paths) > 0 {
		return fmt.Errorf("host paths %s: the kubernetes runtime mounts no ./dir of the upload: copy the files into the image (Dockerfile COPY)", strings.Join(paths, ", "))
	}
	return nil
}
