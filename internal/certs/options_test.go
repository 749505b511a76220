package certs

import (
	"testing"
)

// TestStagingSwitch: the staging switch selects Let's Encrypt's staging
// directory; by default production is used, with staging only for
// retries; another CA has no staging.
func TestStagingSwitch(t *testing.T) {
	const private = "https://ca.internal:9000/acme/directory"
	for _, c := range []struct {
		name     string
		o        Options
		ca, test string
		public   string
	}{
		{"default", Options{}, LetsEncryptCA, LetsEncryptStagingCA, "Let's Encrypt"},
		{"staging", Options{Staging: true}, LetsEncryptStagingCA, "", "Let's Encrypt"},
		{"staging named twice", Options{Staging: true, CA: LetsEncryptStagingCA}, LetsEncryptStagingCA, "", "Let's Encrypt"},
		{"private", Options{CA: private}, private, "", ""},
	} {
		c.o.DataDir = t.TempDir()
		m, err := New(c.o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		iss := m.issuers[0]
		if iss.CA != c.ca || iss.TestCA != c.test || m.acme.publicCA != c.public {
			t.Errorf("%s: CA %q, test CA %q, public %q; want %q, %q, %q", c.name, iss.CA, iss.TestCA, m.acme.publicCA, c.ca, c.test, c.public)
		}
		if got := m.magic.Load().Issuers; len(got) != 1 || got[0] != iss || len(m.obtainCfg.Issuers) != 1 || m.obtainCfg.Issuers[0].IssuerKey() != iss.IssuerKey() {
			t.Errorf("%s: issuers %v, obtain issuers %v", c.name, got, m.obtainCfg.Issuers)
		}
		m.Close()
	}
}
