package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/spec"
)

// localIPs returns 127.0.0.1, ::1 and one non-loopback address of the
// machine, those that exist.
func localIPs() []string {
	ips := []string{"127.0.0.1", "::1"}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() && n.IP.To4() != nil {
			return append(ips, n.IP.String())
		}
	}
	return ips
}

// TestInternalCA connects to the server by IP address, trusting only
// moorage's root: the certificate for the address is issued on the first
// handshake, with no step before; names and wildcards get theirs the same
// way; leaves are reissued when due, and the root survives a restart.
func TestInternalCA(t *testing.T) {
	dataDir := t.TempDir()
	s := newStack(t, "127.0.0.1")
	public := net.ParseIP("203.0.113.7") // as if the server were reached through NAT
	m, err := certs.New(certs.Options{
		DataDir: dataDir, Logger: testLogger(t), HTTPAddr: s.httpAddr, HTTPSAddr: s.httpsAddr,
		InternalLifetime: 3 * time.Second, ExtraIPs: []net.IP{public},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s.mgr.Store(m)
	s.addApp(t, "ipapp", []certs.Site{{Mode: spec.TLSInternal}}, []edge.Site{{TLS: true, HSTS: true}})
	s.addApp(t, "lan", []certs.Site{{Hosts: []string{"myapp.lan", "*.svc.lan"}, Mode: spec.TLSInternal}},
		[]edge.Site{{Hosts: []string{"myapp.lan", "*.svc.lan"}, TLS: true}})

	if in, ok := info(m, "ipapp", "(default route: any name or IP address)"); !ok || in.Status != certs.StatusPending {
		t.Fatalf("before any request: %+v %v", in, ok)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(m.RootPEM()) {
		t.Fatal("RootPEM is not PEM")
	}
	httpsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tested := 0
	for _, ip := range localIPs() {
		addr := s.httpsAddr
		if ip != "127.0.0.1" {
			if addr = s.listenTLS(t, ip); addr == "" {
				t.Logf("cannot listen on %s; skipping it", ip)
				continue
			}
		}
		url := "https://" + addr + "/"
		code, body, leaf := get(t, httpsClient, url)
		if code != 200 || body != "hello from ipapp" {
			t.Fatalf("GET %s = %d %q", url, code, body)
		}
		if !slices.ContainsFunc(leaf.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) ||
			!slices.ContainsFunc(leaf.IPAddresses, func(a net.IP) bool { return a.Equal(public) }) {
			t.Errorf("certificate for %s covers %v", ip, leaf.IPAddresses)
		}
		if _, ok := info(m, "ipapp", ip); !ok {
			t.Errorf("List has no certificate for %s: %+v", ip, m.List())
		}
		tested++
		t.Logf("connected by %s, trusting only moorage's root", ip)
	}
	if tested < 2 {
		t.Errorf("only %d local addresses tested", tested)
	}

	// Plain HTTP by IP goes to HTTPS, path and query kept.
	host, _, _ := net.SplitHostPort(s.httpAddr)
	resp, err := httpsClient.Get("http://" + s.httpAddr + "/x/y?z=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://%s:%d/x/y?z=1", host, s.httpsPort); resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("http by IP: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// Names: exact and wildcard.
	for _, c := range []struct{ sni, want string }{{"myapp.lan", "myapp.lan"}, {"api.svc.lan", "*.svc.lan"}} {
		conn, err := tls.Dial("tcp", s.httpsAddr, &tls.Config{RootCAs: roots, ServerName: c.sni})
		if err != nil {
			t.Fatalf("%s: %v", c.sni, err)
		}
		names := conn.ConnectionState().PeerCertificates[0].DNSNames
		conn.Close()
		if !slices.Equal(names, []string{c.want}) {
			t.Errorf("%s: certificate for %v, want %s", c.sni, names, c.want)
		}
	}

	// Leaves are reissued when two thirds of their lifetime have passed.
	serial := func() string {
		conn, err := tls.Dial("tcp", s.httpsAddr, &tls.Config{RootCAs: roots, ServerName: "myapp.lan"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	eventually(t, 20*time.Second, "a reissued leaf", func() bool { return serial() != first })

	// The root survives a restart; its key is private.
	m.Close()
	m2, err := certs.New(certs.Options{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if string(m2.RootPEM()) != string(m.RootPEM()) {
		t.Errorf("a restart changed the root")
	}
	keyFile := filepath.Join(m2.Dir(), "internal", "root.key")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("root key: %v %v", fi.Mode(), err)
	}
	m2.Close()
	// A root without its key is never replaced silently.
	os.Remove(keyFile)
	if _, err := certs.New(certs.Options{DataDir: dataDir}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("New without the root key: %v", err)
	}
}
