package certs_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/spec"
)

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestBadInput: invalid hosts, wildcards and IP addresses with tls: auto,
// hosts two apps claim: clear errors, and nothing changes.
func TestBadInput(t *testing.T) {
	m, err := certs.New(certs.Options{DataDir: t.TempDir(), Logger: testLogger(t), HTTPAddr: "127.0.0.1:1", HTTPSAddr: "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	auto := func(hosts ...string) []certs.Site { return []certs.Site{{Hosts: hosts, Mode: spec.TLSAuto}} }
	internal := func(hosts ...string) []certs.Site { return []certs.Site{{Hosts: hosts, Mode: spec.TLSInternal}} }
	if err := m.SetApp("one", internal("a.test", "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := m.SetApp("fallback", internal()); err != nil {
		t.Fatal(err)
	}
	before := m.List()
	for _, c := range []struct {
		name  string
		sites []certs.Site
		is    error
		want  []string
	}{
		{"space", internal("ex ample.com"), certs.ErrInvalidSite, []string{`"ex ample.com" is not a valid host name`}},
		{"empty label", internal("a..test"), certs.ErrInvalidSite, []string{"empty label"}},
		{"url", internal("https://x.test"), certs.ErrInvalidSite, []string{"not a URL"}},
		{"port", internal("x.test:443"), certs.ErrInvalidSite, []string{"no port"}},
		{"inner wildcard", internal("a.*.test"), certs.ErrInvalidSite, []string{"wildcard"}},
		{"numeric tld", internal("1.2.3"), certs.ErrInvalidSite, []string{"all digits"}},
		{"wildcard auto", auto("*.b.test"), certs.ErrInvalidSite, []string{"wildcard", "DNS challenge"}},
		{"ip auto", auto("10.0.0.2"), certs.ErrInvalidSite, []string{"IP address", "tls: internal"}},
		{"auto without hosts", auto(), certs.ErrInvalidSite, []string{"needs hosts"}},
		{"unknown mode", []certs.Site{{Hosts: []string{"b.test"}, Mode: "sometimes"}}, certs.ErrInvalidSite, []string{`"sometimes"`}},
		{"claimed host", auto("A.test."), certs.ErrHostConflict, []string{`host "a.test" is already served by app "one"`}},
		{"claimed ip", internal("10.0.0.1"), certs.ErrHostConflict, []string{`"one"`}},
		{"claimed default route", internal(), certs.ErrHostConflict, []string{`default route`}},
		{"one host two modes", []certs.Site{{Hosts: []string{"c.test"}, Mode: spec.TLSAuto}, {Hosts: []string{"c.test"}, Mode: spec.TLSInternal}}, certs.ErrHostConflict, []string{"listed twice"}},
	} {
		for what, err := range map[string]error{"Check": m.Check("two", c.sites), "SetApp": m.SetApp("two", c.sites)} {
			if !errors.Is(err, c.is) || !containsAll(err.Error(), c.want...) {
				t.Errorf("%s: %s: %v, want %v with %q", c.name, what, err, c.is, c.want)
			}
		}
	}
	if after := m.List(); len(after) != len(before) {
		t.Errorf("failed calls changed the sites: %+v", after)
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"}); err != nil {
		t.Errorf("a.test after the failed calls: %v", err)
	}
	// The default route with tls: internal answers any well-formed name.
	if c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "anything.example"}); err != nil || c.Leaf.DNSNames[0] != "anything.example" {
		t.Errorf("default route, any name: %v", err)
	}
	for _, sni := range []string{"bad!name", "*.example"} {
		if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: sni}); !errors.Is(err, certs.ErrNoCertificate) {
			t.Errorf("default route, SNI %q: %v", sni, err)
		}
	}
	// The same app may change its own sites; tls: off sites are ignored.
	if err := m.SetApp("one", append(auto("a.test"), certs.Site{Hosts: []string{"plain.test"}, Mode: spec.TLSOff})); err != nil {
		t.Errorf("app changing its own host: %v", err)
	}
	// Without a listener for the challenges, tls: auto cannot work.
	m2, err := certs.New(certs.Options{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := m2.Check("x", auto("x.test")); !errors.Is(err, certs.ErrInvalidSite) || !strings.Contains(err.Error(), "listener") {
		t.Errorf("auto without listeners: %v", err)
	}
	// Options.
	for _, o := range []certs.Options{
		{DataDir: t.TempDir(), Staging: true, CA: "https://acme.example/dir"},
		{DataDir: t.TempDir(), CA: "acme.example"},
		{DataDir: t.TempDir(), CA: "http://acme.example.com/dir"},
		{DataDir: t.TempDir(), CARoot: "/nonexistent.pem"},
		{DataDir: t.TempDir(), Fallback: &certs.Issuer{CA: certs.ZeroSSLCA, EABKeyID: "kid"}},
		{DataDir: t.TempDir(), HTTPAddr: "80"},
	} {
		if m, err := certs.New(o); err == nil {
			m.Close()
			t.Errorf("New(%+v): no error", o)
		}
	}
}

// TestSitesOf reads the TLS sites of a spec.
func TestSitesOf(t *testing.T) {
	sp, err := spec.Parse("moorage.yaml", []byte(`app: a
services:
  web:
    command: ./run
    http: {hosts: [a.test, www.a.test], tls: auto, canonical: a.test, hsts: true}
  api:
    command: ./api
    http: {hosts: [api.a.test], tls: {cert: /etc/ssl/a.pem, key: /etc/ssl/a.key}}
  admin:
    command: ./admin
    http: {hosts: [admin.a.test]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := certs.SitesOf(sp)
	if len(got) != 2 || got[0].Mode != spec.TLSFiles || got[0].Cert != "/etc/ssl/a.pem" || got[1].Mode != spec.TLSAuto || len(got[1].Hosts) != 2 {
		t.Errorf("SitesOf: %+v", got)
	}
}
