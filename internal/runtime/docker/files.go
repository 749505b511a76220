package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
	"github.com/moorage/moorage/internal/spec"
)

// An accessory's "./dir" host path (./conf:/etc/conf) is config shipped
// with the app. The upload is gone after the build, so Build keeps a copy
// per release, DataDir/runtime/docker/files/<app>/<vN>/dir, and accessories
// mount the copy of the release that (re)started them, read-only: a deploy
// never changes files under a running accessory, a rollback that restarts
// an accessory brings back its release's files, and data written there
// could not survive anyway (it belongs in a named volume). A release's
// copy goes with its image once no container mounts it.

// filesDir holds a release's copies of its app's "./dir" host paths;
// files is the artifact's Files, "<app>/<vN>".
func (r *Runtime) filesDir(files string) string {
	return filepath.Join(r.stateDir, "files", files)
}

// FilesDir is the directory that holds the copies of the "./dir" host
// paths kept with a release, files being its artifact's Files
// ("<app>/<vN>"): the swarm runtime, whose builder is a docker runtime,
// reads them there.
func (r *Runtime) FilesDir(files string) (string, error) {
	if err := validFiles(files); err != nil {
		return "", err
	}
	return r.filesDir(files), nil
}

// KeptFiles lists the Files ("<app>/<vN>") of app's releases whose
// copies are kept and not pruned.
func (r *Runtime) KeptFiles(app string) ([]string, error) {
	if err := seam.ValidName("app", app); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(r.stateDir, "files", app))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		files := app + "/" + e.Name()
		if !e.IsDir() || validFiles(files) != nil {
			continue
		}
		if _, err := os.Stat(r.prunedMark(files)); err == nil {
			continue
		}
		out = append(out, files)
	}
	return out, nil
}

// validFiles checks an artifact's Files.
func validFiles(files string) error {
	app, rel, ok := strings.Cut(files, "/")
	if !ok || seam.ValidName("app", app) != nil || seam.ValidName("release", rel) != nil {
		return fmt.Errorf("artifact files %q: %w", files, runtime.ErrInvalidSpec)
	}
	return nil
}

// prunedMark marks the copies of a pruned release still mounted by a
// container: sweepFiles removes them once none does.
func (r *Runtime) prunedMark(files string) string {
	return r.filesDir(files) + ".pruned"
}

// keepFiles copies the "./dir" host paths sp's accessories mount from the
// upload in ctxDir to the release's files directory, and returns
// "<app>/<release>" (Artifact.Files), or "" when there are none.
func (r *Runtime) keepFiles(app, release, ctxDir string, sp *spec.Spec) (_ string, err error) {
	paths, err := containers.LocalPaths(sp)
	if err != nil || len(paths) == 0 {
		return "", err
	}
	files := app + "/" + release
	dir := r.filesDir(files)
	if err := os.RemoveAll(dir); err != nil { // a failed build's leftovers: nothing mounts them
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir) // a partial copy: nothing mounts it, nothing else sweeps it
		}
	}()
	_ = os.Remove(r.prunedMark(files))
	if ctxDir != "" && r.opts.CheckFiles != nil {
		if err := r.opts.CheckFiles(ctxDir, paths); err != nil {
			return "", err
		}
	}
	for _, rel := range paths {
		src := filepath.Join(ctxDir, rel)
		if ctxDir == "" {
			return "", fmt.Errorf("./%s is mounted (files of a service, or an accessory volume), but nothing was uploaded", rel)
		}
		if _, err := os.Lstat(src); err != nil {
			return "", fmt.Errorf("./%s is mounted (files of a service, or an accessory volume), but it is not in the upload (is it in .moorageignore or .dockerignore?)", rel)
		}
		dst := filepath.Join(dir, rel)
		if _, err := os.Lstat(dst); err == nil {
			continue // inside a path copied already (paths are sorted)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := fsutil.CopyTree(src, dst); err != nil {
			return "", fmt.Errorf("keep ./%s for the release: %w", rel, err)
		}
	}
	return files, nil
}

// removeFiles deletes a release's copies, or marks them for sweepFiles
// while a container (running or not: a stopped one may be started again)
// mounts them.
func (r *Runtime) removeFiles(ctx context.Context, files string) error {
	if err := validFiles(files); err != nil {
		return err
	}
	dir := r.filesDir(files)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	used, err := r.filesInUse(ctx)
	if err != nil {
		return err
	}
	if used[dir] {
		r.log.Info("keeping the files of a pruned release: an accessory mounts them", "files", files)
		return os.WriteFile(r.prunedMark(files), nil, 0o600)
	}
	_ = os.Remove(r.prunedMark(files))
	return os.RemoveAll(dir)
}

// sweepFiles removes the copies of pruned releases no container mounts
// any more.
func (r *Runtime) sweepFiles(ctx context.Context, app string) {
	marks, _ := filepath.Glob(filepath.Join(r.stateDir, "files", app, "*.pruned"))
	if len(marks) == 0 {
		return
	}
	used, err := r.filesInUse(ctx)
	if err != nil {
		r.log.Debug("sweep files", "app", app, "err", err)
		return
	}
	for _, m := range marks {
		dir := strings.TrimSuffix(m, ".pruned")
		if used[dir] {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			os.Remove(m)
			r.log.Info("removed the files of a pruned release", "dir", dir)
		}
	}
}

// filesInUse returns the release files directories containers of this
// runtime mount.
func (r *Runtime) filesInUse(ctx context.Context) (map[string]bool, error) {
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: r.names.Filter()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	root := filepath.Join(r.stateDir, "files") + string(filepath.Separator)
	used := map[string]bool{}
	for _, c := range res.Items {
		for _, m := range c.Mounts {
			rel, ok := strings.CutPrefix(m.Source, root)
			if !ok {
				continue
			}
			// files/<app>/<release>/...
			parts := strings.SplitN(rel, string(filepath.Separator), 3)
			if len(parts) >= 2 {
				used[filepath.Join(root, parts[0], parts[1])] = true
			}
		}
	}
	return used, nil
}
