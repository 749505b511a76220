package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
	"github.com/moorage/moorage/internal/spec"
)

// ErrRunsAsRoot is returned by Build for a service whose image would run
// it as root without the spec saying so.
var ErrRunsAsRoot = errors.New("runs as root")

// Build makes the image of a release from the uploaded context:
// build.command first in the context, then the image <app>:vN (see the
// package doc for the prefix) with the spec's Dockerfile, target and build
// args, labelled with the app and release. With `image:` instead of
// `build:` it makes sure that image is here (pulling it if missing). The
// artifact's Ref is the image ID, so a later retag cannot change what a
// release runs. A service whose image runs as root is refused unless it
// sets `user:` or `allow_root: true`. The context directory is removed.
func (r *Runtime) Build(ctx context.Context, req runtime.BuildRequest) (runtime.Artifact, error) {
	if err := r.life.Check(); err != nil {
		return runtime.Artifact{}, err
	}
	if req.ContextDir != "" {
		defer os.RemoveAll(req.ContextDir)
	}
	if err := seam.ValidName("app", req.App); err != nil {
		return runtime.Artifact{}, err
	}
	if err := seam.ValidName("release", req.Release); err != nil {
		return runtime.Artifact{}, err
	}
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	fail := func(err error) (runtime.Artifact, error) {
		return runtime.Artifact{}, fmt.Errorf("build %s %s: %w: %w", req.App, req.Release, err, runtime.ErrBuild)
	}
	sp := req.Spec
	if sp == nil {
		sp = &spec.Spec{App: req.App}
	}
	r.sweepFiles(ctx, req.App)
	files := ""
	built := false
	defer func() {
		if files != "" && !built {
			os.RemoveAll(r.filesDir(files))
		}
	}()

	if sp.Build == nil && sp.Image != "" {
		img, err := r.ensureImage(ctx, sp.Image, out, "build it here instead (remove image: and add build:, with a Dockerfile in the upload), or load it into the engine (docker load) before deploying")
		if err != nil {
			return fail(err)
		}
		user := ""
		if img.Config != nil {
			user = img.Config.User
		}
		if err := checkRoot(sp, sp.Image, user); err != nil {
			return fail(err)
		}
		if files, err = r.keepFiles(req.App, req.Release, req.ContextDir, sp); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "using image %s (%s)\n", sp.Image, shortID(img.ID))
		built = true
		return withHealthcheck(runtime.Artifact{Runtime: Name, Ref: img.ID, User: user, Files: files}, img.Config), nil
	}

	var b spec.Build
	if sp.Build != nil {
		b = *sp.Build
	}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
	if b.Workdir == "" {
		b.Workdir = spec.DefaultWorkdir
	}
	if req.ContextDir == "" {
		return fail(errors.New("no build context"))
	}
	if !filepath.IsLocal(b.Dockerfile) {
		return fail(fmt.Errorf("build.dockerfile %q is not inside the upload: use a path relative to the app's directory, like Dockerfile or docker/web.Dockerfile: %w", b.Dockerfile, runtime.ErrInvalidSpec))
	}
	if len(b.Command) > 0 {
		if err := r.buildCommand(ctx, req, b.Command, out); err != nil {
			return fail(err)
		}
	}
	var err error
	if files, err = r.keepFiles(req.App, req.Release, req.ContextDir, sp); err != nil {
		return fail(err)
	}
	if _, err := os.Stat(filepath.Join(req.ContextDir, b.Dockerfile)); err != nil {
		return fail(fmt.Errorf("no %s in the upload: the docker runtime builds the image from it (set build.dockerfile, or use image:)", b.Dockerfile))
	}
	tag := r.imageName(req.App, req.Release)
	labels := map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: req.App, containers.LabelRelease: req.Release}
	start := time.Now()
	bl := r.detectBuilder()
	var id string
	if bl.cli != "" {
		fmt.Fprintf(out, "building image %s with BuildKit (%s)\n", tag, bl.desc)
		id, err = r.cliBuild(ctx, bl, req.ContextDir, &b, tag, labels, out)
	} else {
		fmt.Fprintf(out, "building image %s with the Docker Engine API's builder (%s)\n", tag, bl.desc)
		id, err = r.apiBuild(ctx, req.ContextDir, &b, tag, labels, false, out)
		if err != nil && lostCacheImage(err) {
			// The classic builder picked a cached layer from another
			// image with the same content (another app, or another
			// release), and that image was removed before the build
			// used it. Nothing of ours is wrong: build again, without
			// the cache.
			fmt.Fprintf(out, "a cached layer was removed while the build used it (%v); building again without the cache\n", err)
			id, err = r.apiBuild(ctx, req.ContextDir, &b, tag, labels, true, out)
		}
	}
	if err != nil {
		return fail(err)
	}
	img, err := r.cli.ImageInspect(ctx, id)
	if err != nil {
		return fail(fmt.Errorf("inspect the built image: %w", err))
	}
	user := ""
	if img.Config != nil {
		user = img.Config.User
	}
	if err := checkRoot(sp, tag, user); err != nil {
		r.removeImage(context.WithoutCancel(ctx), img.InspectResponse)
		return fail(err)
	}
	fmt.Fprintf(out, "built image %s (%s) in %s\n", tag, shortID(img.ID), time.Since(start).Round(time.Millisecond))
	built = true
	return withHealthcheck(runtime.Artifact{Runtime: Name, Ref: img.ID, Workdir: b.Workdir, User: user, Files: files}, img.Config), nil
}

// Docker's defaults for what a HEALTHCHECK leaves out.
const (
	dockerHealthInterval = 30 * time.Second
	dockerHealthTimeout  = 30 * time.Second
	dockerHealthRetries  = 3
	// healthcheckSlack covers a busy engine running the probes late.
	healthcheckSlack = 10 * time.Second
)

// withHealthcheck records an image's HEALTHCHECK (not HEALTHCHECK NONE) in
// its artifact: that it has one, and how long a new container may take to
// pass it: its start period, then a probe every interval (each may take
// its timeout) until retries+1 of them had their chance, plus some slack.
// Docker runs the first probe only one interval after the start, so a
// fixed wait would fail a healthy app whose interval is long (30s by
// default) while it still says "starting".
func withHealthcheck(a runtime.Artifact, c *dockerspec.DockerOCIImageConfig) runtime.Artifact {
	if c == nil || c.Healthcheck == nil || len(c.Healthcheck.Test) == 0 || c.Healthcheck.Test[0] == "NONE" {
		return a
	}
	a.Healthcheck = true
	a.HealthcheckWait = healthcheckWait(c.Healthcheck)
	return a
}

func healthcheckWait(h *dockerspec.HealthcheckConfig) time.Duration {
	interval, timeout, retries := h.Interval, h.Timeout, h.Retries
	if interval <= 0 {
		interval = dockerHealthInterval
	}
	if timeout <= 0 {
		timeout = dockerHealthTimeout
	}
	if retries <= 0 {
		retries = dockerHealthRetries
	}
	return max(h.StartPeriod, 0) + (interval+timeout)*time.Duration(retries+1) + healthcheckSlack
}

// checkRoot refuses an image that would run a service as root unless the
// service sets a user or allows root.
func checkRoot(sp *spec.Spec, ref, imageUser string) error {
	if !isRootUser(imageUser) {
		return nil
	}
	for _, name := range sp.ServiceNames() {
		svc := sp.Services[name]
		if svc.User != "" || svc.AllowRoot {
			continue
		}
		what := "has no USER"
		if imageUser != "" {
			what = "runs as USER " + imageUser
		}
		return fmt.Errorf("service %s %w: image %s %s; add a non-root USER to the Dockerfile (for example USER 65534), set services.%s.user, or set services.%s.allow_root: true if root is intended: %w",
			name, ErrRunsAsRoot, ref, what, name, name, runtime.ErrInvalidSpec)
	}
	return nil
}

// buildCommand runs build.command in the context directory with the build
// environment (runtime.BuildEnv): a few of the server's variables, req.Env,
// MOORAGE_APP and MOORAGE_RELEASE.
func (r *Runtime) buildCommand(ctx context.Context, req runtime.BuildRequest, argv spec.Command, out io.Writer) error {
	env := runtime.ServerBuildEnv(req.Env, req.App, req.Release, out)
	args := runtime.Expand(argv, env)
	prog, err := lookPath(args[0], env["PATH"], req.ContextDir)
	if err != nil {
		return fmt.Errorf("build command %q: %w", strings.Join(argv, " "), err)
	}
	lw := &seam.LineWriter{W: out}
	cmd := exec.CommandContext(ctx, prog, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Dir = req.ContextDir
	cmd.Env = runtime.EnvList(env)
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	lw.Flush()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it left behind
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build command %q: %w", strings.Join(argv, " "), ctx.Err())
		}
		return fmt.Errorf("build command %q: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// lookPath finds prog: relative to dir when it has a slash, else in path.
func lookPath(prog, path, dir string) (string, error) {
	if strings.Contains(prog, "/") {
		p := prog
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s: not an executable file", prog)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, prog)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", prog)
}

// builder is how images are built.
type builder struct {
	cli  string   // the docker CLI for BuildKit; "" = the Engine API
	args []string // "buildx", "build", "--load" or "build"
	env  []string // extra environment (DOCKER_BUILDKIT=1)
	desc string   // said in the build output
}

// detectBuilder picks the builder once: BuildKit through the first docker
// CLI (Options.CLI, else each "docker" in PATH) that has buildx, or is
// older than 23 (BuildKit built in); else the Engine API's builder.
func (r *Runtime) detectBuilder() builder {
	r.builderOnce.Do(func() { r.builder = r.findBuilder() })
	return r.builder
}

func (r *Runtime) findBuilder() builder {
	if r.opts.Builder == BuilderAPI {
		return builder{desc: "asked for"}
	}
	clis := dockerCLIs(r.opts.CLI)
	if len(clis) == 0 {
		if r.opts.Builder == BuilderCLI {
			return builder{cli: "docker", args: []string{"buildx", "build", "--load"}, desc: "docker buildx, not found"}
		}
		return builder{desc: "no docker CLI in PATH for BuildKit"}
	}
	var why []string
	for _, cli := range clis {
		b, ok, v := r.probeCLI(cli)
		if ok {
			return b
		}
		why = append(why, fmt.Sprintf("%s %s has no buildx", cli, v))
	}
	if r.opts.Builder == BuilderCLI {
		return builder{cli: clis[0], args: []string{"build"}, env: []string{"DOCKER_BUILDKIT=1"}, desc: "DOCKER_BUILDKIT=1 " + clis[0]}
	}
	return builder{desc: strings.Join(why, "; ")}
}

// dockerCLIs lists the docker CLIs to try: cli when set, else every
// "docker" in PATH, in PATH order.
func dockerCLIs(cli string) []string {
	if cli != "" {
		return []string{cli}
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, "docker")
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, p)
	}
	return out
}

// probeCLI reports whether cli builds with BuildKit: it has buildx, or it
// is older than 23 (BuildKit built in, DOCKER_BUILDKIT=1). v is its
// version.
func (r *Runtime) probeCLI(cli string) (b builder, ok bool, v string) {
	env := r.cliEnv()
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	probe := exec.CommandContext(ctx, cli, "buildx", "version")
	probe.Env = env
	if outb, err := probe.CombinedOutput(); err == nil {
		return builder{cli: cli, args: []string{"buildx", "build", "--load"}, desc: cli + " buildx " + firstLine(outb)}, true, ""
	}
	probe = exec.CommandContext(ctx, cli, "version", "--format", "{{.Client.Version}}")
	probe.Env = env
	outb, err := probe.Output()
	v = strings.TrimSpace(string(outb))
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err == nil && major > 0 && major < 23 {
		return builder{cli: cli, args: []string{"build"}, env: []string{"DOCKER_BUILDKIT=1"}, desc: "DOCKER_BUILDKIT=1 " + cli + " " + v}, true, v
	}
	return builder{}, false, v
}

// cliEnv is the environment of docker CLI commands: the server's, pointed
// at the runtime's engine.
func (r *Runtime) cliEnv() []string {
	env := os.Environ()
	if r.opts.Host != "" {
		env = append(env, "DOCKER_HOST="+r.opts.Host)
	}
	return env
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// cliBuild builds with the docker CLI and returns the image ID.
func (r *Runtime) cliBuild(ctx context.Context, bl builder, dir string, b *spec.Build, tag string, labels map[string]string, out io.Writer) (string, error) {
	iid, err := os.CreateTemp("", "moorage-iid-")
	if err != nil {
		return "", err
	}
	iid.Close()
	defer os.Remove(iid.Name())
	args := append([]string{}, bl.args...)
	args = append(args, "--progress", "plain", "--iidfile", iid.Name(), "-f", filepath.Join(dir, b.Dockerfile), "-t", tag)
	if b.Target != "" {
		args = append(args, "--target", b.Target)
	}
	for _, k := range sortedKeys(b.Args) {
		args = append(args, "--build-arg", k+"="+b.Args[k])
	}
	for _, k := range sortedKeys(labels) {
		args = append(args, "--label", k+"="+labels[k])
	}
	args = append(args, dir)
	lw := &seam.LineWriter{W: out}
	cmd := exec.CommandContext(ctx, bl.cli, args...)
	cmd.Dir = dir
	cmd.Env = append(r.cliEnv(), bl.env...)
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	lw.Flush()
	if err != nil {
		return "", fmt.Errorf("docker build: %w", err)
	}
	b2, err := os.ReadFile(iid.Name())
	if err != nil || len(bytes.TrimSpace(b2)) == 0 {
		return "", fmt.Errorf("docker build wrote no image id: %v", err)
	}
	return strings.TrimSpace(string(b2)), nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// apiBuild builds with the Engine API's (classic) builder from a tar of
// the context that honours its .dockerignore, and returns the image ID.
func (r *Runtime) apiBuild(ctx context.Context, dir string, b *spec.Build, tag string, labels map[string]string, noCache bool, out io.Writer) (string, error) {
	ig, err := dockerignore(dir, b.Dockerfile)
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.PackWith(dir, pw, archive.PackOptions{Ignore: ig, SkipSpecial: true})
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = &v
	}
	res, err := r.cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  filepath.ToSlash(b.Dockerfile),
		Target:      b.Target,
		BuildArgs:   args,
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		NoCache:     noCache,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("docker build: %w", err)
	}
	defer res.Body.Close()
	id := ""
	dec := json.NewDecoder(res.Body)
	lw := &seam.LineWriter{W: out}
	defer lw.Flush()
	for {
		var m struct {
			Stream      string          `json:"stream"`
			Status      string          `json:"status"`
			Error       string          `json:"error"`
			ErrorDetail json.RawMessage `json:"errorDetail"`
			Aux         struct {
				ID string `json:"ID"`
			} `json:"aux"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("docker build: read output: %w", err)
		}
		switch {
		case m.Error != "":
			lw.Flush()
			return "", fmt.Errorf("docker build: %s", strings.TrimSpace(m.Error))
		case m.Aux.ID != "":
			id = m.Aux.ID
		case m.Stream != "":
			io.WriteString(lw, m.Stream)
		case m.Status != "":
			io.WriteString(lw, m.Status+"\n")
		}
	}
	if id == "" {
		return "", errors.New("docker build: the engine reported no image id")
	}
	return id, nil
}

// lostCacheImage reports whether a classic build failed because an image
// it had chosen from the cache was removed under it (the engine's message is
// `unable to find image "sha256:..."`).
func lostCacheImage(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to find image \"sha256:")
}

// dockerignore reads the context's .dockerignore; the Dockerfile and the
// .dockerignore itself are always sent (as the docker CLI does).
func dockerignore(dir, dockerfile string) (*archive.Ignore, error) {
	ig := &archive.Ignore{}
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		line := 0
		for sc.Scan() {
			line++
			if err := ig.Add(sc.Text()); err != nil {
				return nil, fmt.Errorf(".dockerignore:%d: %w", line, err)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		ig.File = ".dockerignore"
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_ = ig.Add("!" + filepath.ToSlash(dockerfile))
	_ = ig.Add("!.dockerignore")
	return ig, nil
}

// ensureImage returns ref's image, pulling it when it is not on the
// engine. out (may be nil) gets the pull's progress; advice says what to
// do when it cannot be pulled.
func (r *Runtime) ensureImage(ctx context.Context, ref string, out io.Writer, advice string) (image.InspectResponse, error) {
	img, err := r.cli.ImageInspect(ctx, ref)
	if err == nil {
		return img.InspectResponse, nil
	}
	if !isNotFound(err) {
		return image.InspectResponse{}, fmt.Errorf("image %s: %w", ref, err)
	}
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "pulling image %s\n", ref)
	resp, err := r.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err == nil {
		for m, merr := range resp.JSONMessages(ctx) {
			if merr != nil {
				err = merr
				break
			}
			if m.Error != nil {
				err = errors.New(m.Error.Message)
				break
			}
			if m.Status != "" && m.Progress == nil {
				fmt.Fprintf(out, "%s %s\n", m.ID, m.Status)
			}
		}
		resp.Close()
	}
	if err != nil {
		return image.InspectResponse{}, fmt.Errorf("image %s is not on this server and cannot be pulled (%v): %s", ref, err, advice)
	}
	img, err = r.cli.ImageInspect(ctx, ref)
	if err != nil {
		return image.InspectResponse{}, fmt.Errorf("image %s after the pull: %w", ref, err)
	}
	return img.InspectResponse, nil
}

// RemoveArtifact removes a release's image. Only images this runtime built
// (with its prefix label) are removed: a prebuilt `image:` is left alone.
func (r *Runtime) RemoveArtifact(ctx context.Context, a runtime.Artifact) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	if a.Runtime != "" && a.Runtime != Name {
		return fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	if a.Files != "" {
		if err := r.removeFiles(ctx, a.Files); err != nil {
			return fmt.Errorf("remove the files of %s: %w", a.Files, err)
		}
	}
	img, err := r.cli.ImageInspect(ctx, a.Ref)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove artifact %s: %w", a.Ref, err)
	}
	if img.Config == nil || !r.names.Owned(img.Config.Labels) {
		r.log.Info("not removing an image moorage did not build", "image", a.Ref)
		return nil
	}
	return r.removeImage(ctx, img.InspectResponse)
}

// removeImage removes moorage's tag of an image it built (<app>:vN), and
// with it the image unless other tags (a user's `docker tag`) keep it.
func (r *Runtime) removeImage(ctx context.Context, img image.InspectResponse) error {
	ours := r.ownTag(img)
	if ours == "" {
		if len(img.RepoTags) > 0 {
			r.log.Info("not removing an image tagged by someone else", "image", shortID(img.ID), "tags", strings.Join(img.RepoTags, " "))
			return nil
		}
		ours = img.ID
	}
	if _, err := r.cli.ImageRemove(ctx, ours, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ours, err)
	}
	if len(img.RepoTags) > 1 {
		r.log.Info("untagged an image other tags keep", "image", shortID(img.ID), "tag", ours)
	}
	return nil
}

// ownTag is the tag moorage gave an image it built, when the image still
// has it.
func (r *Runtime) ownTag(img image.InspectResponse) string {
	if img.Config == nil {
		return ""
	}
	l := img.Config.Labels
	if !r.names.Owned(l) || l[containers.LabelApp] == "" || l[containers.LabelRelease] == "" {
		return ""
	}
	tag := r.imageName(l[containers.LabelApp], l[containers.LabelRelease])
	for _, t := range img.RepoTags {
		if t == tag {
			return tag
		}
	}
	return ""
}

// ArtifactExists reports whether the release's image is still on the
// engine.
func (r *Runtime) ArtifactExists(ctx context.Context, a runtime.Artifact) (bool, error) {
	if err := r.life.Check(); err != nil {
		return false, err
	}
	if a.Runtime != "" && a.Runtime != Name {
		return false, fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	if a.Ref == "" {
		return false, nil
	}
	img, err := r.cli.ImageInspect(ctx, a.Ref)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if img.Config != nil && r.names.Owned(img.Config.Labels) && len(img.RepoTags) > 0 && r.ownTag(img.InspectResponse) == "" {
		// Pruned while a user's tag keeps the image: it is theirs now.
		return false, nil
	}
	return true, nil
}

// ArtifactSize is an image's size.
func (r *Runtime) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	img, err := r.cli.ImageInspect(ctx, a.Ref)
	if err != nil {
		return 0, err
	}
	return img.Size, nil
}
