package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a", "b"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a", "b", "run"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a", "secret"), []byte("x"), 0o600))
	must(os.Symlink("b/run", filepath.Join(src, "a", "link")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	must(CopyTree(src, dst))
	for name, want := range map[string]os.FileMode{"a/b/run": 0o755, "a/secret": 0o600} {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("copied %s: %v %v, want mode %o", name, fi, err, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "a", "link")); err != nil || l != "b/run" {
		t.Errorf("copied symlink: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "fifo")); !os.IsNotExist(err) {
		t.Errorf("a fifo was copied: %v", err)
	}
	// One file.
	one := filepath.Join(t.TempDir(), "run")
	must(CopyTree(filepath.Join(src, "a", "b", "run"), one))
	if b, err := os.ReadFile(one); err != nil || string(b) != "#!/bin/sh\n" {
		t.Errorf("copied file: %q %v", b, err)
	}
	// dst must not exist.
	if err := CopyTree(src, dst); err == nil {
		t.Error("copy over an existing tree succeeded")
	}
}
