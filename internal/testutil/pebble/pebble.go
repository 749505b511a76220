// Package pebble starts a real Pebble ACME server and pebble-challtestsrv
// (as its DNS server, answering 127.0.0.1 for every name) for tests. The
// binaries come from `go install github.com/letsencrypt/pebble/v2/cmd/...`;
// a test that needs them skips without them, or fails when
// MOORAGE_REQUIRE_DOCKER=1 (CI installs them).
package pebble

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is a running Pebble.
type Server struct {
	Dir    string         // the ACME directory URL
	CARoot string         // PEM file of the CA of Pebble's own HTTPS (for --acme-ca-root)
	Roots  *x509.CertPool // the root Pebble signs certificates with
	log    *syncBuffer
	dnsAPI string // challtestsrv's management address
}

// Log is what Pebble and challtestsrv printed.
func (s *Server) Log() string { return s.log.String() }

// Options configure Start.
type Options struct {
	HTTPPort, TLSPort int      // where Pebble validates HTTP-01 and TLS-ALPN-01 on 127.0.0.1
	ShortLived        int      // validity in seconds of the "shortlived" profile (default 3600)
	Blocked           []string // names Pebble refuses to issue for
	// EAB, when set, makes External Account Binding required, with these
	// key IDs and HMAC keys (base64url, as a CA's dashboard gives them).
	EAB map[string]string
}

// SetA makes the DNS server Pebble validates with answer ips for host's A
// records, instead of 127.0.0.1 (e.g. an address nobody listens on, for a
// failing validation).
func (s *Server) SetA(t testing.TB, host string, ips ...string) {
	t.Helper()
	s.dnsCall(t, "/add-a", map[string]any{"host": host, "addresses": ips})
}

// ClearA undoes SetA: host resolves to 127.0.0.1 again.
func (s *Server) ClearA(t testing.TB, host string) {
	t.Helper()
	s.dnsCall(t, "/clear-a", map[string]any{"host": host})
}

func (s *Server) dnsCall(t testing.TB, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+s.dnsAPI+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("challtestsrv %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("challtestsrv %s: %s", path, resp.Status)
	}
}

// FindBinary looks for a Go-installed binary in PATH, $GOBIN, $GOPATH/bin
// and ~/go/bin.
func FindBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Require returns the paths of the two binaries, skipping the test when
// they are missing (failing when MOORAGE_REQUIRE_DOCKER=1, as in CI).
func Require(t testing.TB) (pebble, challtestsrv string) {
	t.Helper()
	p, c := FindBinary("pebble"), FindBinary("pebble-challtestsrv")
	if p != "" && c != "" {
		return p, c
	}
	msg := "pebble and pebble-challtestsrv are not installed; install them with\n" +
		"  go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1\n" +
		"  go install github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.1"
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatal("MOORAGE_REQUIRE_DOCKER=1 but " + msg)
	}
	t.Skip(msg + "\n(set MOORAGE_REQUIRE_DOCKER=1 to fail instead)")
	return "", ""
}

// Start starts challtestsrv and Pebble, and stops them when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	pebbleBin, challBin := Require(t)
	if o.ShortLived == 0 {
		o.ShortLived = 3600
	}
	dir := t.TempDir()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble and challtestsrv output:\n%s", logs.String())
		}
	})

	// Pebble's own HTTPS certificate, from a throwaway CA the client is
	// told to trust (--acme-ca-root), as for a private ACME server.
	caPEM, certPEM, keyPEM, err := selfCA([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caRoot := filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key"), filepath.Join(dir, "pebble-ca.pem")
	for p, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM, caRoot: caPEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caPool := x509.NewCertPool()
	caPool.AppendCertsFromPEM(caPEM)

	dnsPort, challMgmt := freePort(t), freePort(t)
	start := func(name string, env []string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
	}
	start(challBin, nil,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort), "-management", "127.0.0.1:"+strconv.Itoa(challMgmt),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")

	listen, mgmt := freePort(t), freePort(t)
	blocked := o.Blocked
	if blocked == nil {
		blocked = []string{}
	}
	eab := o.EAB
	if eab == nil {
		eab = map[string]string{}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": len(eab) > 0,
		"externalAccountMACKeys":         eab,
		"domainBlocklist":                blocked,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default":    map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600},
			"shortlived": map[string]any{"description": "seconds", "validityPeriod": o.ShortLived},
		},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The DNS server must answer before Pebble's first validation.
	eventually(t, 20*time.Second, "challtestsrv to listen", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(dnsPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	start(pebbleBin, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", cfgFile, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort))

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool}}}
	s := &Server{Dir: fmt.Sprintf("https://127.0.0.1:%d/dir", listen), CARoot: caRoot, log: logs,
		dnsAPI: "127.0.0.1:" + strconv.Itoa(challMgmt)}
	eventually(t, 20*time.Second, "pebble to serve its directory", func() bool {
		resp, err := hc.Get(s.Dir)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// The root Pebble signs with: the only root the test clients trust.
	var rootPEM []byte
	eventually(t, 20*time.Second, "pebble's root", func() bool {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		rootPEM, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == 200
	})
	s.Roots = x509.NewCertPool()
	if !s.Roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: not PEM: %q", rootPEM)
	}
	return s
}

// selfCA makes a throwaway CA and a certificate it signs for names.
func selfCA(names []string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
