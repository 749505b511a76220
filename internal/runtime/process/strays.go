//go:build linux

package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/moorage/moorage/internal/runtime/seam"
)

// liveBuilds holds the release directories the builds of this process are
// writing.
var liveBuilds sync.Map // release directory → struct{}

var releaseName = regexp.MustCompile(`^v[0-9]+$`)

// RemoveStrayReleases removes the release directories of app that keep
// does not keep: a server killed during a build leaves a directory that no
// release records as its artifact, that nothing would ever prune. A
// directory a build of this process is writing is never removed, nor one
// whose name is not a release's. It returns the removed directories.
func (r *Runtime) RemoveStrayReleases(ctx context.Context, app string, keep func(release string) bool) ([]string, error) {
	if err := seam.Valid(r.life.Check, "app", app); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(r.opts.DataDir, "releases", app))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list releases of %s: %w", app, err)
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || !releaseName.MatchString(e.Name()) || keep(e.Name()) {
			continue
		}
		dir := r.releaseDir(app, e.Name())
		if _, building := liveBuilds.Load(dir); building {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("remove stray release directory %s: %w", dir, err)
		}
		removed = append(removed, dir)
	}
	return removed, nil
}
