package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/proxy"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CERTS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// eventually polls cond every 20ms until it holds or the deadline passes.
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

// testCA is a throwaway certificate authority for test certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moorage test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

var serials atomic.Int64

// issue returns PEM certificate and key for names (IP addresses included),
// valid from notBefore to notAfter.
func (ca *testCA) issue(t testing.TB, names []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1000 + serials.Add(1)), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// writeFiles writes a certificate and key to dir/name.{crt,key}, each
// atomically (the way certbot and friends replace them).
func writeFiles(t testing.TB, dir, name string, certPEM, keyPEM []byte) (string, string) {
	t.Helper()
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for _, f := range []struct {
		path string
		data []byte
	}{{k, keyPEM}, {c, certPEM}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	return c, k
}

// stack is the serving side of moorage: a real proxy with a real backend
// per app, the edge in front of it, and plain HTTP and HTTPS listeners on
// loopback. The certificate source and the challenge handler are swappable.
type stack struct {
	proxy     *proxy.Proxy
	edge      *edge.Edge
	httpLn    net.Listener
	httpsLn   net.Listener
	httpAddr  string
	httpsAddr string
	httpsPort int
	mgr       atomic.Pointer[certs.Manager]
	backends  map[string]*httptest.Server
	secure    *http.Server
}

// listenTLS serves HTTPS on another address too (ip:0) and returns it, or
// "" when the address cannot be bound.
func (s *stack) listenTLS(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return ""
	}
	go s.secure.ServeTLS(ln, "", "")
	return ln.Addr().String()
}

func newStack(t testing.TB, httpsHost string) *stack {
	t.Helper()
	s := &stack{backends: map[string]*httptest.Server{}}
	s.proxy = proxy.New(proxy.Options{Logger: testLogger(t)})
	t.Cleanup(func() { s.proxy.Close() })
	var err error
	if s.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if s.httpsLn, err = net.Listen("tcp", net.JoinHostPort(httpsHost, "0")); err != nil {
		t.Fatal(err)
	}
	s.httpAddr, s.httpsAddr = s.httpLn.Addr().String(), s.httpsLn.Addr().String()
	s.httpsPort = s.httpsLn.Addr().(*net.TCPAddr).Port
	s.edge = edge.New(s.proxy, edge.Options{
		HTTPSPort: s.httpsPort,
		Challenge: func(w http.ResponseWriter, r *http.Request) bool {
			m := s.mgr.Load()
			return m != nil && m.HandleHTTPChallenge(w, r)
		},
	})
	plain := s.proxy.HTTPServer(proxy.ServerOptions{})
	plain.Handler = s.edge
	secure := s.proxy.HTTPServer(proxy.ServerOptions{})
	secure.Handler = s.edge
	secure.TLSConfig = &tls.Config{
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			m := s.mgr.Load()
			if m == nil {
				return nil, fmt.Errorf("no manager")
			}
			return m.GetCertificate(h)
		},
		NextProtos: []string{"h2", "http/1.1", "acme-tls/1"},
	}
	s.secure = secure
	go plain.Serve(s.httpLn)
	go secure.ServeTLS(s.httpsLn, "", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		plain.Shutdown(ctx)
		secure.Shutdown(ctx)
	})
	return s
}

// addApp routes app's hosts to a backend answering "hello from APP" (or,
// for /echo, the scheme the app saw), in the proxy, certs and edge.
func (s *stack) addApp(t testing.TB, app string, cs []certs.Site, es []edge.Site) {
	t.Helper()
	b := s.backends[app]
	if b == nil {
		b = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/echo" {
				io.WriteString(w, r.Header.Get("X-Forwarded-Proto")+" "+r.Host+" "+r.URL.RequestURI())
				return
			}
			io.WriteString(w, "hello from "+app)
		}))
		t.Cleanup(b.Close)
		s.backends[app] = b
	}
	var hosts []string
	for _, es := range es {
		hosts = append(hosts, es.Hosts...)
	}
	if err := s.mgr.Load().SetApp(app, cs); err != nil {
		t.Fatalf("certs.SetApp(%s): %v", app, err)
	}
	rt := proxy.RouteTargets{
		Route:   proxy.Route{App: app, Service: "web", Hosts: hosts},
		Targets: []proxy.Target{{ID: app + "-web-1", Addr: b.Listener.Addr().String()}},
	}
	if err := s.proxy.SetApp(app, []proxy.RouteTargets{rt}); err != nil {
		t.Fatalf("proxy.SetApp(%s): %v", app, err)
	}
	if err := s.edge.SetApp(app, es); err != nil {
		t.Fatalf("edge.SetApp(%s): %v", app, err)
	}
}

// client is an HTTPS client that trusts only roots and reaches every name
// at addr (plain HTTP requests at httpAddr). Redirects are not followed.
func client(roots *x509.CertPool, httpsAddr, httpAddr string, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: !keepAlive,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if strings.HasSuffix(addr, ":80") {
					return d.DialContext(ctx, network, httpAddr)
				}
				return d.DialContext(ctx, network, httpsAddr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get fetches url and returns the status, body and the served certificate.
func get(t testing.TB, c *http.Client, url string) (int, string, *x509.Certificate) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var leaf *x509.Certificate
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf = resp.TLS.PeerCertificates[0]
	}
	return resp.StatusCode, string(b), leaf
}

// info returns the List entry of app that names name.
func info(m *certs.Manager, app, name string) (certs.Info, bool) {
	for _, in := range m.List() {
		if in.App != app {
			continue
		}
		for _, n := range in.Names {
			if n == name {
				return in, true
			}
		}
	}
	return certs.Info{}, false
}
