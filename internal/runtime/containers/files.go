package containers

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// LocalPaths lists the "./dir" host paths that sp's services (files:) and
// accessories (volumes:) mount: directories (or files) of the app's
// upload, cleaned, relative to the upload, each once, sorted, so that a
// path inside another comes after it. The docker runtime keeps a copy of
// them with each release and bind-mounts it; the swarm runtime hands the
// same copy to Swarm as configs.
func LocalPaths(sp *spec.Spec) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, f := range sp.FilesFor("") {
		rel := filepath.Clean(strings.TrimPrefix(f.Name, "./"))
		if !strings.HasPrefix(f.Name, "./") || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("files: %s is not a directory of the app's upload: %w", f.Name, runtime.ErrInvalidSpec)
		}
		if !seen[rel] {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	for _, n := range sp.AccessoryNames() {
		for _, v := range sp.Accessories[n].Volumes {
			if !strings.HasPrefix(v.Name, "./") {
				continue
			}
			rel := filepath.Clean(strings.TrimPrefix(v.Name, "./"))
			if !filepath.IsLocal(rel) {
				return nil, fmt.Errorf("accessory %s: host path %s leaves the app's directory: %w", n, v.Name, runtime.ErrInvalidSpec)
			}
			if !seen[rel] {
				seen[rel] = true
				out = append(out, rel)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Within reports whether rel (a cleaned relative path) is dir or inside
// it.
func Within(rel, dir string) bool {
	return rel == dir || strings.HasPrefix(rel, dir+string(filepath.Separator))
}
