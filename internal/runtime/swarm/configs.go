package swarm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
)

// The Swarm configs that carry the "./dir" files of releases: see
// files.go.

// configFilter selects the configs of app made by this runtime.
func (r *Runtime) configFilter(app string) client.Filters {
	return r.names.Filter().Add("label", containers.LabelApp+"="+app)
}

// taskSpec is serviceSpec with the "./dir" mounts of s: a config per
// file, a tmpfs per directory (see files.go). The configs are made if
// they are gone.
func (r *Runtime) taskSpec(ctx context.Context, s *runtime.InstanceSpec, img string, run *runtime.RunSpec) (swarm.ServiceSpec, error) {
	spec, err := r.serviceSpec(s, img, run)
	if err != nil {
		return spec, err
	}
	ms, err := r.fileMounts(s)
	if err == nil && len(ms) > 0 {
		var ids map[string]string
		if ids, _, err = r.ensureConfigs(ctx, s.App, ms); err == nil {
			var refs []*swarm.ConfigReference
			var mounts []mount.Mount
			if refs, mounts, err = taskFiles(r.opts.Prefix, s.App, ms, ids); err == nil {
				cs := spec.TaskTemplate.ContainerSpec
				cs.Configs = append(cs.Configs, refs...)
				cs.Mounts = append(cs.Mounts, mounts...)
			}
		}
	}
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("%s: files: %w", s.ID(), err)
	}
	return spec, nil
}

// ensureConfigs makes the configs of the files of ms that do not exist
// yet, and returns the IDs of all of them by name, and how many it made.
func (r *Runtime) ensureConfigs(ctx context.Context, app string, ms []filesMount) (map[string]string, int, error) {
	type file struct {
		path, name string
		e          fileEntry
	}
	need := map[string]file{}
	for _, m := range ms {
		for _, e := range m.Entries {
			if !e.Dir && e.Size > 0 {
				need[configName(r.opts.Prefix, app, e)] = file{filepath.Join(m.Root, filepath.FromSlash(e.Rel)), "./" + path.Join(m.Name, e.Rel), e}
			}
		}
	}
	ids := map[string]string{}
	if len(need) == 0 {
		return ids, 0, nil
	}
	res, err := r.cli.ConfigList(ctx, client.ConfigListOptions{Filters: r.configFilter(app)})
	if err != nil {
		return nil, 0, fmt.Errorf("list swarm configs: %w", err)
	}
	for _, c := range res.Items {
		ids[c.Spec.Name] = c.ID
	}
	names := make([]string, 0, len(need))
	for n := range need {
		if ids[n] == "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	made := 0
	for _, name := range names {
		f := need[name]
		data, err := os.ReadFile(f.path)
		if err != nil {
			return nil, made, err
		}
		if sum, _ := hashFile(f.path); sum != f.e.Sum {
			return nil, made, fmt.Errorf("%s changed while it was read", f.path)
		}
		labels := map[string]string{containers.LabelPrefix: r.opts.Prefix, containers.LabelApp: app, labelFileSum: f.e.Sum}
		c, err := r.cli.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: swarm.ConfigSpec{
			Annotations: swarm.Annotations{Name: name, Labels: labels},
			Data:        data,
		}})
		if err == nil {
			ids[name] = c.ID
			made++
			continue
		}
		if !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
			return nil, made, fmt.Errorf("create swarm config %s for %s: %w", name, f.name, err)
		}
		// Made meanwhile, by another instance of the release starting.
		got, ierr := r.cli.ConfigInspect(ctx, name, client.ConfigInspectOptions{})
		if ierr != nil {
			return nil, made, fmt.Errorf("create swarm config %s: %w", name, err)
		}
		if !r.names.Owned(got.Config.Spec.Labels) {
			return nil, made, fmt.Errorf("a swarm config named %s exists that moorage (prefix %s) does not own: %w; remove it (docker config rm %s)", name, r.opts.Prefix, runtime.ErrExists, name)
		}
		ids[name] = got.Config.ID
	}
	return ids, made, nil
}

// keepConfigs makes the configs of the files kept with a release (its
// artifact's Files), so that its tasks find them on any node.
func (r *Runtime) keepConfigs(ctx context.Context, app, files string, out io.Writer) error {
	base, err := r.builder.FilesDir(files)
	if err != nil {
		return err
	}
	es, err := walkFiles(base, "the upload's files")
	if err != nil {
		return err
	}
	begin := time.Now()
	_, made, err := r.ensureConfigs(ctx, app, []filesMount{{Root: base, Entries: es}})
	if err != nil {
		return err
	}
	n := 0
	for _, e := range es {
		if !e.Dir && e.Size > 0 {
			n++
		}
	}
	fmt.Fprintf(out, "%d files of the upload (./dir mounts) are swarm configs, %d new, in %s\n", n, made, time.Since(begin).Round(time.Millisecond))
	return nil
}

// sweepConfigs removes app's configs that no kept release has a file for
// and no service refers to (Swarm refuses to remove those, so a running
// accessory keeps the files it was started with; they go at a later
// sweep). The configs are listed before the releases are read: one made
// meanwhile, for a release being built, is not removed.
func (r *Runtime) sweepConfigs(ctx context.Context, app string) {
	res, err := r.cli.ConfigList(ctx, client.ConfigListOptions{Filters: r.configFilter(app)})
	if err != nil || len(res.Items) == 0 {
		return
	}
	kept, err := r.builder.KeptFiles(app)
	if err != nil {
		r.log.Debug("sweep configs", "app", app, "err", err)
		return
	}
	needed := map[string]bool{}
	for _, f := range kept {
		base, err := r.builder.FilesDir(f)
		if err != nil {
			return
		}
		es, err := walkFiles(base, f)
		if err != nil {
			r.log.Warn("sweep configs: a kept release's files cannot be read; removing none", "files", f, "err", err)
			return
		}
		for _, e := range es {
			if !e.Dir {
				needed[configName(r.opts.Prefix, app, e)] = true
			}
		}
	}
	removed := 0
	for _, c := range res.Items {
		if needed[c.Spec.Name] || !r.names.Owned(c.Spec.Labels) {
			continue
		}
		if _, err := r.cli.ConfigRemove(ctx, c.ID, client.ConfigRemoveOptions{}); err != nil {
			if !isNotFound(err) {
				r.log.Debug("swarm config kept", "config", c.Spec.Name, "err", err)
			}
			continue
		}
		removed++
	}
	if removed > 0 {
		r.log.Info("removed swarm configs of files no release keeps", "app", app, "configs", removed)
	}
}
