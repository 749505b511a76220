//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
	"github.com/moorage/moorage/internal/spec"
)

// Build turns the uploaded context into the release directory
// DataDir/releases/<app>/<release>: it moves the context there, links the
// volumes mounted under build.workdir into it, and runs build.command in
// it. On failure nothing is left behind. The directory is never modified
// afterwards.
func (r *Runtime) Build(ctx context.Context, req runtime.BuildRequest) (runtime.Artifact, error) {
	if err := seam.Valid(r.life.Check, "app", req.App, "release", req.Release); err != nil {
		return runtime.Artifact{}, err
	}
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	var b spec.Build
	if req.Spec != nil && req.Spec.Build != nil {
		b = *req.Spec.Build
	}
	workdir := b.Workdir
	if workdir == "" {
		workdir = spec.DefaultWorkdir
	}
	fail := func(err error) (runtime.Artifact, error) {
		return runtime.Artifact{}, fmt.Errorf("build %s %s: %w: %w", req.App, req.Release, err, runtime.ErrBuild)
	}

	dst := r.releaseDir(req.App, req.Release)
	if _, err := os.Lstat(dst); err == nil {
		return fail(fmt.Errorf("release directory %s already exists", dst))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o711); err != nil {
		return fail(err)
	}
	if err := moveDir(req.ContextDir, dst); err != nil {
		return fail(fmt.Errorf("move the build context: %w", err))
	}
	// Readable by the users services may run as (`user:`); the data dir
	// above is traversable only.
	if err := os.Chmod(dst, 0o755); err != nil {
		return fail(err)
	}
	ok := false
	liveBuilds.Store(dst, struct{}{})
	defer func() {
		if !ok {
			_ = os.RemoveAll(dst)
		}
		liveBuilds.Delete(dst)
	}()

	if req.Spec != nil {
		if err := r.linkVolumes(req.App, dst, workdir, req.Spec); err != nil {
			return fail(err)
		}
	}

	if len(b.Command) > 0 {
		env := runtime.ServerBuildEnv(req.Env, req.App, req.Release, out)
		p, args, err := command(b.Command, env, dst)
		if err != nil {
			return fail(fmt.Errorf("build command: %w", err))
		}
		cmd := &exec.Cmd{Path: p, Args: args, Env: runtime.EnvList(env), Dir: dst}
		lw := &seam.LineWriter{W: out}
		// Recorded like a one-off while it runs: a server killed meanwhile
		// leaves it orphaned, and the next start kills it (killOrphanTasks).
		recPath := filepath.Join(r.taskDir, "build-"+req.App+"-"+req.Release+".json")
		liveTasks.Store(recPath, struct{}{})
		res, err := runGroup(ctx, cmd, groupIO{Stdout: lw, Stderr: lw}, 0, r.recordTask(recPath, "build of "+req.App+" "+req.Release))
		_ = os.Remove(recPath)
		liveTasks.Delete(recPath)
		lw.Flush()
		if err != nil {
			return fail(fmt.Errorf("build command %q: %w", strings.Join(b.Command, " "), err))
		}
		if res.code != 0 {
			return fail(fmt.Errorf("build command %q: %s", strings.Join(b.Command, " "), res.msg))
		}
	}
	if r.appUsers() {
		// Immutable to the app's user, who will only read it.
		if err := sealRelease(dst, -1); err != nil {
			return fail(err)
		}
	}
	ok = true
	return runtime.Artifact{Runtime: Name, Ref: dst, Workdir: workdir}, nil
}

// linkVolumes makes each volume mounted under workdir appear at the same
// place in the release directory, as a symlink to the volume's directory.
func (r *Runtime) linkVolumes(app, dst, workdir string, s *spec.Spec) error {
	names := make([]string, 0, len(s.Volumes))
	for n := range s.Volumes {
		names = append(names, n)
	}
	sort.Strings(names)
	wd := path.Clean(workdir)
	for _, n := range names {
		v := s.Volumes[n]
		m := path.Clean(v.Mount)
		var rel string
		switch {
		case m == wd:
			return fmt.Errorf("volume %s: mount %s cannot be the app directory itself", n, v.Mount)
		case wd == "/":
			rel = strings.TrimPrefix(m, "/")
		case strings.HasPrefix(m, wd+"/"):
			rel = strings.TrimPrefix(m, wd+"/")
		default:
			continue // mounted outside the app: only docker sees it
		}
		if err := seam.ValidName("volume", n); err != nil {
			return err
		}
		vdir := r.volumeDir(app, n)
		if err := os.MkdirAll(vdir, 0o750); err != nil {
			return fmt.Errorf("volume %s: %w", n, err)
		}
		link := filepath.Join(dst, filepath.FromSlash(rel))
		if _, err := os.Lstat(link); err == nil {
			return fmt.Errorf("volume %s is mounted at %s, but the upload already has %s: remove it from the upload (volume data never lives in a release)", n, v.Mount, rel)
		}
		// A parent that is a symlink could point the link outside the
		// release; create real directories only.
		if err := mkdirInside(dst, filepath.Dir(link)); err != nil {
			return fmt.Errorf("volume %s: %w", n, err)
		}
		if err := os.Symlink(vdir, link); err != nil {
			return fmt.Errorf("volume %s: %w", n, err)
		}
	}
	return nil
}

// mkdirInside creates dir (under root) and its parents, refusing to go
// through symlinks or non-directories.
func mkdirInside(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s in the upload is not a directory", strings.TrimPrefix(cur, root+"/"))
		}
	}
	return nil
}

// moveDir renames src to dst, copying when they are on different
// filesystems.
func moveDir(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", src)
	}
	err = os.Rename(src, dst)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := fsutil.CopyTree(src, dst); err != nil {
		_ = os.RemoveAll(dst)
		return err
	}
	return os.RemoveAll(src)
}

// RemoveArtifact deletes a release directory.
func (r *Runtime) RemoveArtifact(ctx context.Context, a runtime.Artifact) error {
	if err := r.life.Check(); err != nil {
		return err
	}
	dir, err := r.artifactDir(a)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove artifact: %w", err)
	}
	// Drop the app's releases directory once it is empty.
	_ = os.Remove(filepath.Dir(dir))
	return nil
}

// ArtifactExists reports whether the release directory still exists.
func (r *Runtime) ArtifactExists(ctx context.Context, a runtime.Artifact) (bool, error) {
	if err := r.life.Check(); err != nil {
		return false, err
	}
	dir, err := r.artifactDir(a)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

// artifactDir checks that a names a release directory of this runtime.
func (r *Runtime) artifactDir(a runtime.Artifact) (string, error) {
	if a.Runtime != "" && a.Runtime != Name {
		return "", fmt.Errorf("artifact of runtime %q: %w", a.Runtime, runtime.ErrInvalidSpec)
	}
	root := filepath.Join(r.opts.DataDir, "releases")
	dir := filepath.Clean(a.Ref)
	rel, err := filepath.Rel(root, dir)
	if err != nil || !filepath.IsAbs(dir) || rel == "." || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("artifact %s is not a release directory under %s: %w", a.Ref, root, runtime.ErrInvalidSpec)
	}
	return dir, nil
}

// EnsureVolume creates the volume's directory DataDir/volumes/<app>/<name>.
func (r *Runtime) EnsureVolume(ctx context.Context, app, name string) error {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return err
	}
	if err := os.MkdirAll(r.volumeDir(app, name), 0o750); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// EnsureNetwork does nothing: processes reach each other on 127.0.0.1.
func (r *Runtime) EnsureNetwork(ctx context.Context, app string) error {
	return r.life.Check()
}

// VolumePath is the directory holding a volume: DataDir/volumes/<app>/<name>.
func (r *Runtime) VolumePath(ctx context.Context, app, name string) (string, error) {
	if err := seam.Valid(r.life.Check, "volume", name); err != nil {
		return "", err
	}
	d := r.volumeDir(app, name)
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("volume %s of %s: %w", name, app, err)
	}
	return d, nil
}

// RemoveVolume deletes a volume and its data. Only an explicit `moorage
// volume rm` calls it; nothing else ever removes a volume.
func (r *Runtime) RemoveVolume(ctx context.Context, app, name string) error {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return err
	}
	d := r.volumeDir(app, name)
	if _, err := os.Stat(d); err != nil {
		return fmt.Errorf("volume %s of %s: %w", name, app, runtime.ErrNotFound)
	}
	if err := os.RemoveAll(d); err != nil {
		return fmt.Errorf("remove volume %s of %s: %w", name, app, err)
	}
	return nil
}

// RemoveAppData deletes what is left of app's data once its instances are
// gone: its accessories' working directories and its (emptied) volumes
// directory.
func (r *Runtime) RemoveAppData(ctx context.Context, app string) ([]string, error) {
	if err := seam.Valid(r.life.Check, "app", app); err != nil {
		return nil, err
	}
	var gone []string
	var errs []error
	for _, d := range []string{filepath.Join(r.opts.DataDir, "accessories", app), filepath.Join(r.opts.DataDir, "volumes", app)} {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, d)
	}
	return gone, errors.Join(errs...)
}
