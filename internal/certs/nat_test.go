package certs

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
)

// TestBehindNAT: a client connecting to the public address a site lists
// sends no SNI, and the connection arrives on a private address no site
// lists: the site that lists IP addresses serves it, with a certificate
// for both addresses. With several such apps, the error says what to do
// (and not what the user already did).
func TestBehindNAT(t *testing.T) {
	m, err := New(Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hello := func(local string) *tls.ClientHelloInfo { return &tls.ClientHelloInfo{Conn: fakeConn{local: local}} }
	covers := func(c *tls.Certificate, ips ...string) bool {
		for _, ip := range ips {
			if !slices.ContainsFunc(c.Leaf.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) {
				return false
			}
		}
		return true
	}

	// No app serves an IP address: the error says to list one.
	_, err = m.GetCertificate(hello("10.0.0.5:443"))
	if !errors.Is(err, ErrNoCertificate) || !strings.Contains(err.Error(), "list the address the clients connect to in an app's hosts: with tls: internal (behind NAT, the public address)") {
		t.Errorf("no site: %v", err)
	}

	// The default route without TLS does not stop the NAT fallback.
	if err := m.SetApp("plain", []Site{{Mode: spec.TLSOff}}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetApp("nat", []Site{{Hosts: []string{"203.0.113.7", "app.lan"}, Mode: spec.TLSInternal}}); err != nil {
		t.Fatal(err)
	}
	c, err := m.GetCertificate(hello("10.0.0.5:443"))
	if err != nil {
		t.Fatalf("behind NAT: %v", err)
	}
	if !covers(c, "203.0.113.7", "10.0.0.5") {
		t.Errorf("behind NAT: certificate for %v", c.Leaf.IPAddresses)
	}
	// A client that connects on the listed address directly, too.
	if c, err := m.GetCertificate(hello("203.0.113.7:443")); err != nil || !covers(c, "203.0.113.7") {
		t.Errorf("on the public address: %v", err)
	}

	// A second app with IP addresses: which one is ambiguous.
	if err := m.SetApp("other", []Site{{Hosts: []string{"198.51.100.9"}, Mode: spec.TLSInternal}}); err != nil {
		t.Fatal(err)
	}
	_, err = m.GetCertificate(hello("10.0.0.5:443"))
	if !errors.Is(err, ErrNoCertificate) || !strings.Contains(err.Error(), `apps nat, other all list IP addresses`) ||
		!strings.Contains(err.Error(), "add 10.0.0.5 to the hosts: of the app it belongs to") || strings.Contains(err.Error(), "behind NAT, the public address") {
		t.Errorf("two apps with IP addresses: %v", err)
	}
	// Each still serves its own address.
	if c, err := m.GetCertificate(hello("198.51.100.9:443")); err != nil || !covers(c, "198.51.100.9") {
		t.Errorf("other's address: %v", err)
	}

	// A default route with tls: internal covers every address.
	m.RemoveApp("plain")
	if err := m.SetApp("plain", []Site{{Mode: spec.TLSInternal}}); err != nil {
		t.Fatal(err)
	}
	if c, err := m.GetCertificate(hello("10.0.0.5:443")); err != nil || !covers(c, "10.0.0.5", "203.0.113.7", "198.51.100.9") {
		t.Errorf("default route: %v", err)
	}
}
