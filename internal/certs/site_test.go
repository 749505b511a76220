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

// privateCA is an ACME directory of a private CA: it may certify any name.
const privateCA = "https://ca.internal:9000/acme/directory"

// TestBadInput: invalid hosts, wildcards and IP addresses with tls: auto,
// hosts two apps claim: clear errors, and nothing changes.
func TestBadInput(t *testing.T) {
	m, err := certs.New(certs.Options{DataDir: t.TempDir(), Logger: testLogger(t), CA: privateCA, HTTPAddr: "127.0.0.1:1", HTTPSAddr: "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	auto := func(hosts ...string) []certs.Site { return []certs.Site{{Hosts: hosts, Mode: spec.TLSAuto}} }
	internal := func(hosts ...string) []certs.Site { return []certs.Site{{Hosts: hosts, Mode: spec.TLSInternal}} }
	if err := m.SetApp("one", append(internal("a.test", "10.0.0.1"), certs.Site{Hosts: []string{"plain.test"}, Mode: spec.TLSOff})); err != nil {
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
		{"claimed host", auto("A.test."), certs.ErrHostConflict, []string{`host "a.test" is already served by app "one"`, `remove it from the hosts: of "one"`}},
		{"claimed ip", internal("10.0.0.1"), certs.ErrHostConflict, []string{`"one"`}},
		{"claimed default route", internal(), certs.ErrHostConflict, []string{`default route`, `give this app's routes hosts:`}},
		{"claimed without tls", internal("plain.test"), certs.ErrHostConflict, []string{`host "plain.test" is already served by app "one"`}},
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
	// A host served without TLS gets no certificate, not even the default
	// route's.
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "plain.test"}); !errors.Is(err, certs.ErrNoCertificate) || !strings.Contains(err.Error(), "without TLS") {
		t.Errorf("host without tls: %v", err)
	}
	// The same app may change its own sites; tls: off sites serve nothing
	// and are not listed.
	if err := m.SetApp("one", append(auto("a.test"), certs.Site{Hosts: []string{"plain.test"}, Mode: spec.TLSOff})); err != nil {
		t.Errorf("app changing its own host: %v", err)
	}
	for _, in := range m.List() {
		if in.Mode == spec.TLSOff {
			t.Errorf("List has a site without TLS: %+v", in)
		}
	}
	// Without a way to answer the challenges, tls: auto cannot work; the
	// error says why.
	for _, c := range []struct {
		o    certs.Options
		want string
	}{
		{certs.Options{}, "neither an HTTP nor an HTTPS listener"},
		{certs.Options{HTTPAddr: "127.0.0.1:1", HTTPSAddr: "127.0.0.1:2", DisableHTTPChallenge: true, DisableTLSALPNChallenge: true}, "both ACME challenges are turned off"},
		{certs.Options{HTTPAddr: "127.0.0.1:1", DisableHTTPChallenge: true}, "allow http-01, or give the server --https"},
	} {
		c.o.DataDir, c.o.Logger, c.o.CA = t.TempDir(), testLogger(t), privateCA
		m2, err := certs.New(c.o)
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Check("x", auto("x.test")); !errors.Is(err, certs.ErrInvalidSite) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("auto without challenges (%+v): %v, want %q", c.o, err, c.want)
		}
		m2.Close()
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
	if len(got) != 3 || got[0].Service != "admin" || got[0].Mode != spec.TLSOff ||
		got[1].Mode != spec.TLSFiles || got[1].Cert != "/etc/ssl/a.pem" || got[2].Mode != spec.TLSAuto || len(got[2].Hosts) != 2 {
		t.Errorf("SitesOf: %+v", got)
	}
	if !certs.HasTLS(got) || certs.HasTLS(got[:1]) {
		t.Errorf("HasTLS")
	}
}

// TestPublicCANames: with a public CA (Let's Encrypt, its staging CA,
// ZeroSSL), tls: auto refuses names no public CA certifies and says to use
// tls: internal; a private CA, or a private fallback, may certify them.
func TestPublicCANames(t *testing.T) {
	newM := func(o certs.Options) *certs.Manager {
		o.DataDir, o.Logger, o.HTTPAddr, o.HTTPSAddr = t.TempDir(), testLogger(t), "127.0.0.1:1", "127.0.0.1:2"
		m, err := certs.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	auto := func(h string) []certs.Site { return []certs.Site{{Hosts: []string{h}, Mode: spec.TLSAuto}} }
	private := []string{"localhost", "app.localhost", "app.internal", "foo", "nas.local", "myapp.lan", "shop.test", "router.home.arpa"}
	public := []string{"example.com", "www.shop.example.co.uk", "app.moorage.dev"}
	for _, c := range []struct {
		name string
		o    certs.Options
		ca   string
	}{
		{"lets encrypt", certs.Options{}, "Let's Encrypt"},
		{"staging", certs.Options{Staging: true}, "Let's Encrypt"},
		{"zerossl", certs.Options{CA: certs.ZeroSSLCA}, "ZeroSSL"},
		{"with a public fallback", certs.Options{Fallback: &certs.Issuer{CA: certs.ZeroSSLCA}}, "Let's Encrypt and ZeroSSL"},
	} {
		m := newM(c.o)
		for _, h := range private {
			err := m.Check("a", auto(h))
			if !errors.Is(err, certs.ErrInvalidSite) || !containsAll(err.Error(), c.ca+" only certifies public domain names", "use tls: internal") {
				t.Errorf("%s: %s: %v", c.name, h, err)
			}
		}
		for _, h := range public {
			if err := m.Check("a", auto(h)); err != nil {
				t.Errorf("%s: %s: %v", c.name, h, err)
			}
		}
	}
	for _, o := range []certs.Options{{CA: privateCA}, {Fallback: &certs.Issuer{CA: privateCA}}} {
		m := newM(o)
		for _, h := range private {
			if err := m.Check("a", auto(h)); err != nil {
				t.Errorf("private CA %+v: %s: %v", o, h, err)
			}
		}
	}
}
