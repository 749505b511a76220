package reglogin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/secrets"
	"github.com/moorage/moorage/internal/store"
)

func newLogins(t *testing.T) (*Logins, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secrets.LoadOrCreate(filepath.Join(dir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &Logins{Store: st, Sealer: box}, dir
}

// A login round-trips through the store sealed: the store holds no
// password in clear, Lookup opens it, only for its own host.
func TestSealedRoundTrip(t *testing.T) {
	ctx := context.Background()
	l, dir := newLogins(t)
	const pw = "s3cret-Pa55word"
	rec, err := l.Set(ctx, api.RegistryLoginRequest{Host: "reg.example.com:5000", Username: "deployer", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Host != "reg.example.com:5000" || rec.Username != "deployer" || bytes.Contains(rec.Password, []byte(pw)) {
		t.Fatalf("stored %+v", rec)
	}
	user, got, ok, err := l.Lookup(ctx, "reg.example.com:5000")
	if err != nil || !ok || user != "deployer" || got != pw {
		t.Fatalf("Lookup = %q, %q, %v, %v", user, got, ok, err)
	}
	for _, other := range []string{"reg.example.com", "reg.example.com:5001", "docker.io", ""} {
		if _, _, ok, err := l.Lookup(ctx, other); ok || err != nil {
			t.Errorf("Lookup(%q) = %v, %v: a login is only for its own host", other, ok, err)
		}
	}
	// A second login replaces the first.
	if _, err := l.Set(ctx, api.RegistryLoginRequest{Host: "reg.example.com:5000", Username: "ci", Password: "other"}); err != nil {
		t.Fatal(err)
	}
	if user, got, _, _ := l.Lookup(ctx, "reg.example.com:5000"); user != "ci" || got != "other" {
		t.Fatalf("after a second login: %q %q", user, got)
	}
	if ls, _ := l.List(ctx); len(ls) != 1 {
		t.Fatalf("%d logins, want 1", len(ls))
	}
	// Nothing in the data dir holds the password in clear.
	l.Set(ctx, api.RegistryLoginRequest{Host: "b.example.com", Username: "u", Password: pw})
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s holds the password in clear", p)
			}
		}
		return nil
	})
	if err := l.Remove(ctx, "HTTPS://B.example.com/"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := l.Lookup(ctx, "b.example.com"); ok {
		t.Fatal("a removed login is still found")
	}
	if err := l.Remove(ctx, "b.example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing it again: %v, want not found", err)
	}
}

// A sealed password is bound to its host: moved to another host's row,
// it does not open, and the error says what to do without the password.
func TestSealedBoundToHost(t *testing.T) {
	ctx := context.Background()
	l, _ := newLogins(t)
	sealed, err := Seal(l.Sealer, "a.example.com", "pw-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Store.SetRegistryLogin(ctx, store.RegistryLogin{Host: "b.example.com", Username: "u", Password: sealed}); err != nil {
		t.Fatal(err)
	}
	_, _, ok, err := l.Lookup(ctx, "b.example.com")
	if ok || err == nil || !strings.Contains(err.Error(), "moorage registry login b.example.com") || strings.Contains(err.Error(), "pw-a") {
		t.Fatalf("Lookup of a moved password: %v, %v", ok, err)
	}
	// Another server's key does not open it either.
	other, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(other, "a.example.com", sealed); err == nil {
		t.Fatal("another key opened the password")
	}
}
