package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, want := range []string{"one", "two"} {
		if err := WriteFileAtomic(p, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Fatalf("read %q %v, want %q", b, err, want)
		}
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".f.tmp*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}
