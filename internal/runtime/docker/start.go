package docker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// ErrDockerSocket is returned for a bind mount that would hand the Docker
// socket to an app.
var ErrDockerSocket = errors.New("the Docker socket is never mounted into app containers")

// Start creates and starts a supervised container and returns once it
// runs. It fails with ErrExists when the instance's container exists
// (running or not).
func (r *Runtime) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	return r.ids.Start(r.life.Check, &s, validateSpec, func(id string) (runtime.Instance, error) { return r.start(ctx, id, &s) })
}

// validateSpec is containers.ValidateSpec: every host path is mounted.
func validateSpec(s *runtime.InstanceSpec) error { return containers.ValidateSpec(s, nil) }

func (r *Runtime) start(ctx context.Context, id string, s *runtime.InstanceSpec) (runtime.Instance, error) {
	name := r.names.Instance(id)
	if c, err := r.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil {
		if !r.names.Owned(c.Container.Config.Labels) {
			return runtime.Instance{}, fmt.Errorf("a container named %s exists that moorage (prefix %s) does not own: %w; %s", name, r.opts.Prefix, runtime.ErrExists,
				"moorage never touches a container it did not make: rename it (docker rename "+name+" another-name) or remove it (docker rm -f "+name+"); or give this server its own names with --docker-prefix")
		}
		return runtime.Instance{}, runtime.ErrExists
	} else if !isNotFound(err) {
		return runtime.Instance{}, err
	}
	img, err := r.imageFor(ctx, s)
	if err != nil {
		return runtime.Instance{}, err
	}
	p, err := r.containerPlan(ctx, s, img, nil)
	if err != nil {
		return runtime.Instance{}, err
	}
	logPath := seam.LogPath(r.opts.DataDir, s.App, id)
	lf, err := logs.Open(logPath, r.opts.LogMaxSize, r.opts.LogMaxFiles)
	if err != nil {
		return runtime.Instance{}, err
	}
	if err := writeState(r.statePath(id), &instanceState{Created: time.Now().UTC()}); err != nil {
		lf.Close()
		return runtime.Instance{}, err
	}
	ok := false
	created := ""
	defer func() {
		if ok {
			return
		}
		lf.Close()
		_ = os.Remove(r.statePath(id))
		if created != "" {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_, _ = r.cli.ContainerRemove(rctx, created, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	}()
	res, err := r.cli.ContainerCreate(ctx, p.create)
	if err != nil {
		return runtime.Instance{}, fmt.Errorf("create container: %w", err)
	}
	created = res.ID
	r.prepareVolumes(ctx, p)
	if _, err := r.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		if strings.Contains(err.Error(), "no such file or directory") {
			// The engine's message names the program, not where a relative
			// one was looked for.
			wd := p.create.Config.WorkingDir
			if wd == "" {
				if img.Config != nil {
					wd = img.Config.WorkingDir
				}
			}
			if wd == "" {
				wd = "/"
			}
			return runtime.Instance{}, fmt.Errorf("start container: %w (working directory %s in image %s)", err, wd, p.create.Config.Image)
		}
		return runtime.Instance{}, fmt.Errorf("start container: %w", err)
	}
	c, err := r.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		return runtime.Instance{}, err
	}
	ok = true
	r.supervise(id, &c.Container, lf, 0)
	r.log.Debug("container started", "instance", id, "container", shortID(res.ID))
	return r.instance(&c.Container), nil
}

// imageFor returns the image an instance runs: its artifact, or for an
// accessory its image (pulled when missing).
func (r *Runtime) imageFor(ctx context.Context, s *runtime.InstanceSpec) (image.InspectResponse, error) {
	if s.Kind == runtime.KindAccessory && s.Image != "" {
		return r.ensureImage(ctx, s.Image, nil, fmt.Sprintf("moorage does not build the images of accessories; build it on this server (docker build -t %s DIR, for example from a Dockerfile FROM postgres:16), or load it (docker load), then deploy again", s.Image))
	}
	a := s.Artifact
	if a.Runtime != "" && a.Runtime != Name {
		return image.InspectResponse{}, fmt.Errorf("artifact of the %s runtime: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	if a.Ref == "" {
		return image.InspectResponse{}, fmt.Errorf("no image: %w", runtime.ErrInvalidSpec)
	}
	img, err := r.cli.ImageInspect(ctx, a.Ref)
	if isNotFound(err) {
		return image.InspectResponse{}, fmt.Errorf("image %s: %w", a.Ref, runtime.ErrArtifactGone)
	}
	if err != nil {
		return image.InspectResponse{}, err
	}
	return img.InspectResponse, nil
}

// containerPlan is a container to create and what to do before it starts.
type containerPlan struct {
	create  client.ContainerCreateOptions
	volumes []string // named volumes the instance mounts
	uid     int      // the numeric user it runs as; -1 when unknown
	gid     int
}

// containerPlan builds the container of an instance; run is set for a
// one-off.
func (r *Runtime) containerPlan(ctx context.Context, s *runtime.InstanceSpec, img image.InspectResponse, run *runtime.RunSpec) (*containerPlan, error) {
	id := s.ID()
	if err := r.EnsureNetwork(ctx, s.App); err != nil {
		return nil, err
	}
	var imgCfg container.Config
	if img.Config != nil {
		imgCfg.Env = img.Config.Env
		imgCfg.User = img.Config.User
		imgCfg.WorkingDir = img.Config.WorkingDir
	}
	p := &containerPlan{uid: -1, gid: -1}
	user := s.User
	if user == "" {
		user = imgCfg.User
	}
	p.uid, p.gid = containers.NumericUser(user)

	var mounts []mount.Mount
	vols := map[string]string{}
	for _, m := range s.Mounts {
		if seam.IsHostPath(m.Name) {
			src, err := r.hostPath(s, m.Name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			// "./dir" is a release's copy of the upload: read-only.
			ro := strings.HasPrefix(m.Name, "./")
			r.log.Debug("bind-mounting a host path", "instance", id, "host_path", src, "target", m.Target, "read_only", ro)
			mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: m.Target, ReadOnly: ro})
			continue
		}
		if err := r.EnsureVolume(ctx, s.App, m.Name); err != nil {
			return nil, err
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: r.names.Volume(s.App, m.Name), Target: m.Target})
		p.volumes = append(p.volumes, m.Name)
		vols[runtime.VolumeEnv(m.Name)] = m.Target
	}

	env := runtime.InstanceEnv(s, s.Port, vols)
	var cmd []string
	if len(s.Command) > 0 {
		cmd = runtime.Expand(s.Command, runtime.Merge(envMap(imgCfg.Env), env))
	}
	labels := r.names.Labels(s)
	stopSignal, secs := containers.Stop(s)
	imageRef := img.ID
	if s.Kind == runtime.KindAccessory && s.Image != "" {
		imageRef = s.Image
	}
	cfg := &container.Config{
		Hostname:    containers.Hostname(id),
		User:        s.User,
		Env:         runtime.EnvList(env),
		Cmd:         cmd,
		Image:       imageRef,
		Labels:      labels,
		StopSignal:  stopSignal,
		StopTimeout: &secs,
	}
	if imgCfg.WorkingDir == "" && s.Kind != runtime.KindAccessory && s.Artifact.Workdir != "" {
		cfg.WorkingDir = s.Artifact.Workdir
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(r.names.Network(s.App)),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig:      container.LogConfig{Type: "local", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		Mounts:         mounts,
		ReadonlyRootfs: s.ReadOnly,
		Resources: container.Resources{
			Memory:   s.Memory,
			NanoCPUs: int64(s.CPUs * 1e9),
		},
	}
	if s.ReadOnly {
		hc.Tmpfs = map[string]string{"/tmp": "rw,nosuid,nodev"}
	}
	if s.Port > 0 {
		port, ok := network.PortFrom(uint16(s.Port), network.TCP)
		if !ok {
			return nil, fmt.Errorf("%s: port %d: %w", id, s.Port, runtime.ErrInvalidSpec)
		}
		cfg.ExposedPorts = network.PortSet{port: {}}
		if s.Publish && run == nil {
			labels[containers.LabelPublish] = "1"
			hc.PortBindings = network.PortMap{port: {{HostIP: loopback, HostPort: ""}}}
		}
	}
	ep := &network.EndpointSettings{}
	if s.Kind == runtime.KindAccessory {
		ep.Aliases = []string{s.Service}
	}
	if run != nil {
		cfg.Tty = run.TTY
		cfg.AttachStdout, cfg.AttachStderr = true, true
		if run.Stdin != nil {
			cfg.AttachStdin, cfg.OpenStdin, cfg.StdinOnce = true, true, true
		}
	}
	p.create = client.ContainerCreateOptions{
		Name:             r.names.Instance(id),
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{r.names.Network(s.App): ep}},
	}
	return p, nil
}

// isRootUser reports whether an image or spec user is root.
func isRootUser(u string) bool {
	us, _, _ := strings.Cut(u, ":")
	return us == "" || us == "root" || us == "0"
}

func envMap(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// hostPath resolves a bind mount's host path: absolute, or "./dir" in the
// copy of the upload kept with the release s.Artifact names (see
// keepFiles; releases made before there were copies per release use the
// app's one copy). The Docker socket, or a directory that holds it, is
// refused.
func (r *Runtime) hostPath(s *runtime.InstanceSpec, name string) (string, error) {
	var p string
	switch {
	case strings.HasPrefix(name, "/"):
		p = filepath.Clean(name)
	case strings.HasPrefix(name, "./"):
		rel := filepath.Clean(strings.TrimPrefix(name, "./"))
		if !filepath.IsLocal(rel) {
			return "", fmt.Errorf("host path %s leaves the app's directory: %w", name, runtime.ErrInvalidSpec)
		}
		base := r.bindDir(s.App)
		if f := s.Artifact.Files; f != "" {
			if err := validFiles(f); err != nil {
				return "", err
			}
			base = r.filesDir(f)
		}
		p = filepath.Join(base, rel)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("host path %s was not in the upload of %s (looked in %s): %w", name, s.App, base, runtime.ErrInvalidSpec)
		}
	default:
		return "", fmt.Errorf("host path %q: use an absolute path or ./dir: %w", name, runtime.ErrInvalidSpec)
	}
	resolved := p
	if e, err := filepath.EvalSymlinks(p); err == nil {
		resolved = e
	}
	for _, sock := range r.dockerSockets() {
		for _, cand := range []string{p, resolved} {
			if cand == sock || cand == "/" || strings.HasPrefix(sock, strings.TrimSuffix(cand, "/")+"/") {
				return "", fmt.Errorf("host path %s holds %s: %w: %w", name, sock, ErrDockerSocket, runtime.ErrInvalidSpec)
			}
		}
	}
	return p, nil
}

// dockerSockets lists the paths of the engine's socket, resolved.
func (r *Runtime) dockerSockets() []string {
	cands := []string{"/var/run/docker.sock", "/run/docker.sock"}
	for _, h := range []string{r.opts.Host, os.Getenv("DOCKER_HOST"), r.cli.DaemonHost()} {
		if u, err := url.Parse(h); err == nil && u.Scheme == "unix" && u.Path != "" {
			cands = append(cands, u.Path)
		}
	}
	var out []string
	for _, c := range cands {
		out = append(out, filepath.Clean(c))
		if e, err := filepath.EvalSymlinks(c); err == nil {
			out = append(out, e)
		}
		if e, err := filepath.EvalSymlinks(filepath.Dir(c)); err == nil {
			out = append(out, filepath.Join(e, filepath.Base(c)))
		}
	}
	return out
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
