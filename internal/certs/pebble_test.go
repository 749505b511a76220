package certs_test

import (
	"crypto/x509"
	"testing"

	"github.com/moorage/moorage/internal/testutil/pebble"
)

// Names Pebble refuses to issue for.
const blockedName = "blocked.moorage.test"

// peb is a running Pebble, as the ACME tests use it.
type peb struct {
	dir    string
	caRoot string
	roots  *x509.CertPool
	srv    *pebble.Server
}

// startPebble starts challtestsrv and Pebble validating HTTP-01 at httpPort
// and TLS-ALPN-01 at tlsPort on 127.0.0.1. Profiles: "default" (90 days)
// and "shortlived" (shortLived seconds).
func startPebble(t *testing.T, httpPort, tlsPort, shortLived int) *peb {
	t.Helper()
	s := pebble.Start(t, pebble.Options{HTTPPort: httpPort, TLSPort: tlsPort, ShortLived: shortLived, Blocked: []string{blockedName}})
	return &peb{dir: s.Dir, caRoot: s.CARoot, roots: s.Roots, srv: s}
}
