package swarm

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/docker"
)

// runPrefix is the moorage.prefix label of an interactive one-off's
// container: neither the runtime's own (a docker runtime with the same
// prefix on the manager's engine must not take it for one of its one-offs)
// nor a task's.
const runPrefix = "swarm-run:"

// runInteractive runs a one-off with a terminal or input (s.TTY,
// s.Stdin). Swarm services and jobs attach neither, so it is a plain
// container on the manager's engine, made from the job the one-off would
// be (serviceSpec: the same image, command, env, user, working directory,
// mounts and limits), attached to the app's overlay network (attachable:
// EnsureNetwork), where it reaches the app's accessories and services by
// name as a job does. The manager has the release's image (it is built
// there) and is the engine the runtime always reaches; Swarm's placement
// does not apply. The container is removed when it ends, when ctx ends
// (the client went away), and when the runtime closes (Close waits for
// that); one a dead server left is removed by the next runtime (adopt).
func (r *Runtime) runInteractive(ctx context.Context, s *runtime.RunSpec, id string, fail func(error) (int, error)) (int, error) {
	var code int
	var err error
	done := make(chan struct{})
	// In the runtime's life, so that Close waits until it is removed.
	if !r.life.Go(func() {
		defer close(done)
		code, err = r.runContainer(ctx, s, id, fail)
	}) {
		return fail(runtime.ErrRuntimeClosed)
	}
	<-done
	return code, err
}

func (r *Runtime) runContainer(ctx context.Context, s *runtime.RunSpec, id string, fail func(error) (int, error)) (int, error) {
	// Files of the upload are Swarm configs, which only a task mounts:
	// the container gets a copy of them instead (copyFiles).
	files, err := r.fileMounts(&s.InstanceSpec)
	if err != nil {
		return fail(err)
	}
	if len(files) > 0 {
		plain := *s
		plain.Mounts = nil
		for _, m := range s.Mounts {
			if !strings.HasPrefix(m.Name, "./") {
				plain.Mounts = append(plain.Mounts, m)
			}
		}
		s = &plain
	}
	name := r.names.Instance(id)
	if _, err := r.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil {
		return fail(runtime.ErrExists)
	} else if !isNotFound(err) {
		return fail(err)
	}
	if err := r.EnsureNetwork(ctx, s.App); err != nil {
		return fail(err)
	}
	img, err := r.managerImage(ctx, &s.InstanceSpec)
	if err != nil {
		return fail(err)
	}
	spec, err := r.serviceSpec(&s.InstanceSpec, img, s)
	if err != nil {
		return fail(err)
	}
	opts, err := runContainerOptions(name, spec, s)
	if err != nil {
		return fail(err)
	}
	opts.Config.Labels[containers.LabelPrefix] = runPrefix + r.opts.Prefix
	created, err := r.cli.ContainerCreate(ctx, opts)
	if err != nil {
		return fail(fmt.Errorf("create container on the manager: %w", err))
	}
	// Whatever happens, the one-off goes.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := r.cli.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			r.log.Warn("removing an interactive one-off's container", "task", id, "err", err)
		}
	}()
	if len(files) > 0 {
		if opts.HostConfig.ReadonlyRootfs {
			return fail(fmt.Errorf("a one-off with a terminal or input runs on the manager, where the upload's files (%s) are copied into its container, and read_only forbids that; run the command without a terminal (-T) and without input, as a job: %w", files[0].Name, runtime.ErrNotSupported))
		}
		if err := r.copyFiles(ctx, created.ID, files); err != nil {
			return fail(err)
		}
	}
	res, err := docker.RunAttached(ctx, r.ctx, r.cli, created.ID, s, r.log.With("task", id))
	if err != nil {
		return fail(err)
	}
	return res.Finish(id, s, r.events.Publish)
}

// copyFiles copies the "./dir" files of an interactive one-off into its
// created container: the same tree a task mounts from Swarm configs, owned
// by root, without write permission (a command running as root can still
// change its copy, which goes with the container).
func (r *Runtime) copyFiles(ctx context.Context, cid string, files []filesMount) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarFiles(pw, files)) }()
	_, err := r.cli.CopyToContainer(ctx, cid, client.CopyToContainerOptions{DestinationPath: "/", Content: pr})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("copy the upload's files into the one-off's container on the manager: %w; run the command without a terminal (-T) and without input, as a job, to have Swarm mount them as configs instead", err)
	}
	return nil
}

// tarFiles writes the trees of files as a tar archive rooted at "/".
func tarFiles(w io.Writer, files []filesMount) error {
	tw := tar.NewWriter(w)
	for _, m := range files {
		for _, e := range m.Entries {
			name := strings.TrimPrefix(path.Join(m.Target, e.Rel), "/")
			mode := int64(e.Mode.Perm() &^ 0o222)
			if e.Dir {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: time.Now()}); err != nil {
					return err
				}
				continue
			}
			src := m.Root
			if e.Rel != "" {
				src = filepath.Join(m.Root, filepath.FromSlash(e.Rel))
			}
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: e.Size, ModTime: time.Now()})
			if err == nil {
				_, err = io.CopyN(tw, f, e.Size)
			}
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", path.Join(m.Name, e.Rel), err)
			}
		}
	}
	return tw.Close()
}

// managerImage is the release's image on the manager, by ID (the builder's
// image, whether or not it was also pushed to a registry): what an
// interactive one-off runs, and what imageRef pushes or ships.
func (r *Runtime) managerImage(ctx context.Context, s *runtime.InstanceSpec) (string, error) {
	a := s.Artifact
	if a.Runtime != "" && a.Runtime != Name {
		return "", fmt.Errorf("artifact of the %s runtime: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	if a.Ref == "" {
		return "", fmt.Errorf("no image: %w", runtime.ErrInvalidSpec)
	}
	ok, err := r.builder.ArtifactExists(ctx, r.builderArtifact(a))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s is not on the manager: %w", a.Ref, runtime.ErrArtifactGone)
	}
	return a.Ref, nil
}

// runContainerOptions turns a one-off's job into the container that runs
// it attached: the job's container spec, network and limits, with a
// terminal or input as s asks.
func runContainerOptions(name string, spec swarm.ServiceSpec, s *runtime.RunSpec) (client.ContainerCreateOptions, error) {
	tt := spec.TaskTemplate
	cs := tt.ContainerSpec
	if cs == nil {
		return client.ContainerCreateOptions{}, fmt.Errorf("%s: no container spec", name)
	}
	if len(cs.Configs) > 0 || len(cs.Secrets) > 0 {
		return client.ContainerCreateOptions{}, fmt.Errorf("interactive one-offs on swarm cannot mount Swarm configs or secrets; run the command without -it: %w", runtime.ErrNotSupported)
	}
	labels := make(map[string]string, len(cs.Labels))
	for k, v := range cs.Labels {
		labels[k] = v
	}
	cfg := &container.Config{
		Hostname:     cs.Hostname,
		User:         cs.User,
		Env:          cs.Env,
		Cmd:          cs.Args,
		Entrypoint:   cs.Command,
		WorkingDir:   cs.Dir,
		Image:        cs.Image,
		Labels:       labels,
		StopSignal:   cs.StopSignal,
		Tty:          s.TTY,
		AttachStdout: true,
		AttachStderr: true,
	}
	if cs.StopGracePeriod != nil {
		secs := int(*cs.StopGracePeriod / time.Second)
		cfg.StopTimeout = &secs
	}
	if s.Stdin != nil {
		cfg.AttachStdin, cfg.OpenStdin, cfg.StdinOnce = true, true, true
	}
	hc := &container.HostConfig{
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Mounts:         cs.Mounts,
		ReadonlyRootfs: cs.ReadOnly,
		Init:           cs.Init,
	}
	if d := tt.LogDriver; d != nil {
		hc.LogConfig = container.LogConfig{Type: d.Name, Config: d.Options}
	}
	if res := tt.Resources; res != nil && res.Limits != nil {
		hc.Resources.Memory = res.Limits.MemoryBytes
		hc.Resources.NanoCPUs = res.Limits.NanoCPUs
	}
	eps := map[string]*network.EndpointSettings{}
	for _, n := range tt.Networks {
		eps[n.Target] = &network.EndpointSettings{Aliases: n.Aliases}
		if hc.NetworkMode == "" {
			hc.NetworkMode = container.NetworkMode(n.Target)
		}
	}
	return client.ContainerCreateOptions{
		Name:             name,
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: eps},
	}, nil
}

// removeLeftoverRuns removes the interactive one-offs a dead server left
// on the manager.
func (r *Runtime) removeLeftoverRuns(ctx context.Context) error {
	cs, err := r.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", containers.LabelPrefix+"="+runPrefix+r.opts.Prefix),
	})
	if err != nil {
		return fmt.Errorf("swarm runtime: list the manager's containers: %w", err)
	}
	for _, c := range cs.Items {
		r.log.Info("removing an interactive one-off a previous server left", "container", c.Names, "id", shortID(c.ID))
		if _, err := r.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			return fmt.Errorf("swarm runtime: remove the one-off %s a previous server left: %w", shortID(c.ID), err)
		}
	}
	return nil
}
