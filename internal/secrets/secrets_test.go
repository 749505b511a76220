package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	b, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, err %v", fi.Mode(), err)
	}
	secret := []byte("hunter2-very-secret")
	sealed, err := b.Seal("app", "PASSWORD", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the secret")
	}
	// A second load uses the same key.
	b2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Open("app", "PASSWORD", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q, %v", got, err)
	}
	// Bound to app and name.
	for _, c := range [][2]string{{"other", "PASSWORD"}, {"app", "OTHER"}} {
		if _, err := b2.Open(c[0], c[1], sealed); !errors.Is(err, ErrSealed) {
			t.Errorf("opened as %v: %v", c, err)
		}
	}
	// Tampering is detected.
	sealed[len(sealed)-1] ^= 1
	if _, err := b2.Open("app", "PASSWORD", sealed); !errors.Is(err, ErrSealed) {
		t.Errorf("tampered value opened: %v", err)
	}
}

func TestKeyPermissionsChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	if _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreate(path); !errors.Is(err, ErrKey) {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}
