package certs

import (
	"os"
	"path/filepath"
	"testing"
)

// DeleteCertificates deletes the stored certificates of the hosts it is
// given, from every issuer, and nothing else; a host name cannot reach
// outside the storage.
func TestDeleteCertificates(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{
		"certificates/acme-v02.api.letsencrypt.org-directory/shop.example.com/shop.example.com.crt",
		"certificates/localhost-14000-dir/shop.example.com/shop.example.com.key",
		"certificates/acme-v02.api.letsencrypt.org-directory/other.example.com/other.example.com.crt",
		"keep/x",
	} {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("x"), 0o600)
	}
	m := &Manager{dir: dir}
	gone, err := m.DeleteCertificates([]string{"shop.example.com", "", "..", "../keep", "none.example.com"})
	if err != nil || len(gone) != 2 {
		t.Fatalf("deleted %v, %v", gone, err)
	}
	for _, p := range gone {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
	for _, p := range []string{"certificates/acme-v02.api.letsencrypt.org-directory/other.example.com", "keep/x"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s was deleted", p)
		}
	}
}
