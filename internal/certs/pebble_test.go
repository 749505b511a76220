package certs_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
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

// pebble is a real Pebble ACME server and pebble-challtestsrv (as its DNS
// server, answering 127.0.0.1 for every name), started by a test.
type pebble struct {
	dir    string // the ACME directory URL
	caRoot string // PEM file of the CA of Pebble's own HTTPS
	roots  *x509.CertPool
	log    *syncBuffer
}

// Names Pebble refuses to issue for.
const blockedName = "blocked.moorage.test"

// findBinary looks for a Go-installed binary in PATH, $GOBIN, $GOPATH/bin
// and ~/go/bin.
func findBinary(name string) string {
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

// requirePebble returns the paths of the two binaries, skipping the test
// when they are missing (failing when MOORAGE_REQUIRE_DOCKER=1, as in CI).
func requirePebble(t *testing.T) (string, string) {
	t.Helper()
	p, c := findBinary("pebble"), findBinary("pebble-challtestsrv")
	if p != "" && c != "" {
		return p, c
	}
	msg := "pebble and pebble-challtestsrv are not installed; install them with\n" +
		"  go install github.com/letsencrypt/pebble/v2/cmd/pebble@latest\n" +
		"  go install github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@latest"
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatal("MOORAGE_REQUIRE_DOCKER=1 but " + msg)
	}
	t.Skip(msg + "\n(set MOORAGE_REQUIRE_DOCKER=1 to fail instead)")
	return "", ""
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

// syncBuffer collects a process's output.
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

// startPebble starts challtestsrv and Pebble validating HTTP-01 at httpPort
// and TLS-ALPN-01 at tlsPort on 127.0.0.1. Profiles: "default" (90 days)
// and "shortlived" (shortLived seconds).
func startPebble(t *testing.T, httpPort, tlsPort, shortLived int) *pebble {
	t.Helper()
	pebbleBin, challBin := requirePebble(t)
	dir := t.TempDir()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble and challtestsrv output:\n%s", logs.String())
		}
	})

	// Pebble's own HTTPS certificate, from a CA the Manager is told to
	// trust (Options.CARoot) — as for a private ACME server.
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, []string{"localhost", "127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	certFile, keyFile := writeFiles(t, dir, "pebble", certPEM, keyPEM)
	caRoot := filepath.Join(dir, "pebble-ca.pem")
	if err := os.WriteFile(caRoot, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}

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
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"domainBlocklist":                []string{blockedName},
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default":    map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600},
			"shortlived": map[string]any{"description": "seconds", "validityPeriod": shortLived},
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

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	p := &pebble{dir: fmt.Sprintf("https://127.0.0.1:%d/dir", listen), caRoot: caRoot, log: logs}
	eventually(t, 20*time.Second, "pebble to serve its directory", func() bool {
		resp, err := hc.Get(p.dir)
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
	p.roots = x509.NewCertPool()
	if !p.roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: not PEM: %q", rootPEM)
	}
	return p
}
