//go:build linux

package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// errNoCommand is returned for an empty argv.
var errNoCommand = errors.New("no command")

// lookPath resolves argv0 the way a shell would for a process started in
// dir with environment PATH pathEnv: a name with a slash is taken as is
// (relative to dir); a bare name is searched in pathEnv (relative entries
// relative to dir).
func lookPath(argv0, pathEnv, dir string) (string, error) {
	if argv0 == "" {
		return "", errNoCommand
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			if filepath.IsAbs(argv0) {
				return "", fmt.Errorf("%s: %w", argv0, err)
			}
			return "", fmt.Errorf("%s: %w in %s", argv0, err, dir)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, argv0)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in PATH (%s)", argv0, pathEnv)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied (not executable)")
	}
	return nil
}
