package e2e

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Nothing in the data dir is readable by other users except what must be:
// release directories (services may run as another user) and volumes
// (handed to that user). The group (the server's) may read logs and use the
// socket, which already gives it everything. The state and the secrets key
// are the owner's only.
func TestDataDirPermissions(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	s.mustRun("config", "set", "--secret", "-a", "hello", "TOKEN=perm-secret")
	s.deploy(app, 0)
	s.waitBody("/env/TOKEN", "perm-secret")
	s.mustRun("backup", "create", "-a", "hello")
	s.mustRun("run", "-a", "hello", "--", "true")

	exact := map[string]fs.FileMode{
		".": 0o711, "moorage.sock": 0o660, "secrets.key": 0o600,
		"moorage.db": 0o600, "moorage.db-wal": 0o600, "moorage.db-shm": 0o600,
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(s.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dataDir, p)
		fi, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		perm := fi.Mode().Perm()
		top := strings.Split(rel, string(filepath.Separator))[0]
		switch {
		case exact[rel] != 0:
			seen[rel] = true
			if perm != exact[rel] {
				t.Errorf("%s has mode %o, want %o", rel, perm, exact[rel])
			}
		case top == "releases", top == "volumes":
			// Readable by design (see docs/operations.md).
		case top == "tmp":
			// The instances' temporary directories: tmp is traversable
			// only (0711), each one its instance's alone (0700); what an
			// app writes inside is its own affair.
			depth := strings.Count(rel, string(filepath.Separator))
			if depth == 0 && perm&0o066 != 0 || depth == 1 && perm&0o077 != 0 && d.IsDir() {
				t.Errorf("%s has mode %o: readable by the group or others", rel, perm)
			}
		case top == "logs":
			if perm&0o007 != 0 {
				t.Errorf("%s has mode %o: readable by others", rel, perm)
			}
		default:
			if perm&0o077 != 0 && d.Type()&fs.ModeSymlink == 0 {
				t.Errorf("%s has mode %o: readable by the group or others", rel, perm)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range exact {
		if !seen[name] {
			t.Errorf("%s is not in the data dir", name)
		}
	}
}
