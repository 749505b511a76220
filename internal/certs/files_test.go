package certs_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/spec"
)

// TestOwnFiles serves own certificate files and picks up their
// replacement without a restart; a broken replacement keeps the previous
// certificate serving and shows in List until it is fixed.
func TestOwnFiles(t *testing.T) {
	s := newStack(t, "127.0.0.1")
	m, err := certs.New(certs.Options{
		DataDir: t.TempDir(), Logger: testLogger(t), HTTPAddr: s.httpAddr, HTTPSAddr: s.httpsAddr,
		FileCheckInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s.mgr.Store(m)
	ca := newTestCA(t)
	dir := t.TempDir()
	names := []string{"files.moorage.test", "*.files.moorage.test"}
	now := time.Now()
	c1, k1 := ca.issue(t, names, now.Add(-time.Hour), now.Add(time.Hour))
	certFile, keyFile := writeFiles(t, dir, "site", c1, k1)
	site := certs.Site{Hosts: names, Mode: spec.TLSFiles, Cert: certFile, Key: keyFile}
	s.addApp(t, "own", []certs.Site{site}, []edge.Site{{Hosts: names, TLS: true}})

	c := client(ca.pool(), s.httpsAddr, s.httpAddr, false)
	serial := func(host string) string {
		_, body, leaf := get(t, c, "https://"+host+"/")
		if body != "hello from own" {
			t.Fatalf("GET https://%s/: %q", host, body)
		}
		return fmt.Sprintf("%x", leaf.SerialNumber)
	}
	s1 := serial("files.moorage.test")
	if s2 := serial("a.files.moorage.test"); s2 != s1 {
		t.Errorf("wildcard host served another certificate")
	}
	in, ok := info(m, "own", "files.moorage.test")
	if !ok || in.Managed || in.Serial != s1 || in.Status != certs.StatusValid || in.Issuer != "moorage test CA" {
		t.Fatalf("List: %+v", in)
	}

	// Replaced (both files): served from the next handshake on.
	c2, k2 := ca.issue(t, names, now.Add(-time.Hour), now.Add(2*time.Hour))
	writeFiles(t, dir, "site", c2, k2)
	var s2 string
	eventually(t, 10*time.Second, "the new certificate to be served", func() bool {
		s2 = serial("files.moorage.test")
		return s2 != s1
	})

	// A certificate whose key has not been written yet: the previous pair
	// keeps serving, the error shows, then the key arrives.
	c3, k3 := ca.issue(t, names, now.Add(-time.Hour), now.Add(3*time.Hour))
	if err := os.WriteFile(certFile, c3, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reload error in List", func() bool {
		in, _ := info(m, "own", "files.moorage.test")
		return in.LastError != ""
	})
	if got := serial("files.moorage.test"); got != s2 {
		t.Errorf("a half-replaced pair was served (%s)", got)
	}
	if err := os.WriteFile(keyFile, k3, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the fixed pair to be served", func() bool {
		return serial("files.moorage.test") != s2
	})
	if in, _ := info(m, "own", "files.moorage.test"); in.LastError != "" {
		t.Errorf("error still shown after the fix: %q", in.LastError)
	}
}

// TestOwnFilesBad: files that cannot serve the site are refused before
// anything changes, with an error saying why.
func TestOwnFilesBad(t *testing.T) {
	m, err := certs.New(certs.Options{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ca := newTestCA(t)
	dir := t.TempDir()
	now := time.Now()
	good, goodKey := ca.issue(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	_, otherKey := ca.issue(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	expired, expiredKey := ca.issue(t, []string{"a.test"}, now.Add(-2*time.Hour), now.Add(-time.Hour))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crt, key := write("good.crt", good), write("good.key", goodKey)
	for _, c := range []struct {
		name      string
		hosts     []string
		cert, key string
		want      string
	}{
		{"missing", []string{"a.test"}, filepath.Join(dir, "nope.crt"), key, "no such file"},
		{"garbage", []string{"a.test"}, write("garbage.crt", []byte("hello")), key, "PEM"},
		{"key of another certificate", []string{"a.test"}, crt, write("other.key", otherKey), "does not match"},
		{"host not covered", []string{"a.test", "b.test"}, crt, key, `does not cover host "b.test"`},
		{"expired", []string{"a.test"}, write("expired.crt", expired), write("expired.key", expiredKey), "expired"},
		{"relative", []string{"a.test"}, "good.crt", key, "absolute"},
	} {
		site := []certs.Site{{Hosts: c.hosts, Mode: spec.TLSFiles, Cert: c.cert, Key: c.key}}
		for what, err := range map[string]error{"Check": m.Check("app", site), "SetApp": m.SetApp("app", site)} {
			if err == nil || !containsAll(err.Error(), c.want) {
				t.Errorf("%s: %s: %v, want an error with %q", c.name, what, err, c.want)
			}
			if c.name != "relative" && !errors.Is(err, certs.ErrBadCertFiles) {
				t.Errorf("%s: %s: %v is not ErrBadCertFiles", c.name, what, err)
			}
		}
	}
	if len(m.List()) != 0 {
		t.Errorf("a failed SetApp changed something: %+v", m.List())
	}
	ok := []certs.Site{{Hosts: []string{"a.test"}, Mode: spec.TLSFiles, Cert: crt, Key: key}}
	if err := m.Check("app", ok); err != nil {
		t.Fatal(err)
	}
	if err := m.SetApp("app", ok); err != nil {
		t.Fatal(err)
	}
	cert, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "A.test."})
	if err != nil || cert.Leaf.Subject.CommonName != "a.test" {
		t.Errorf("GetCertificate: %v %v", cert, err)
	}
}
