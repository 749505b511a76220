package certs_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/testutil/pebble"
)

const shortLived = 24 // seconds: the validity of Pebble's "shortlived" profile

// TestACME obtains certificates from a real Pebble with each challenge,
// serves them through the edge and a real proxy to clients that trust only
// Pebble's root, renews them while requests flow (forced, then on their
// own with short-lived certificates), and keeps a failing name from
// affecting the others.
func TestACME(t *testing.T) {
	s := newStack(t, "127.0.0.1")
	peb := startPebble(t, portOf(s.httpAddr), s.httpsPort, shortLived)
	newManager := func(t *testing.T, mod func(*certs.Options)) *certs.Manager {
		o := certs.Options{
			DataDir: t.TempDir(), Logger: testLogger(t), CA: peb.dir, CARoot: peb.caRoot, Email: "ops@moorage.test",
			HTTPAddr: s.httpAddr, HTTPSAddr: s.httpsAddr,
		}
		if mod != nil {
			mod(&o)
		}
		m, err := certs.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		s.mgr.Store(m)
		return m
	}
	waitValid := func(t *testing.T, m *certs.Manager, app, name string) certs.Info {
		t.Helper()
		var in certs.Info
		eventually(t, 45*time.Second, "a certificate for "+name, func() bool {
			in, _ = info(m, app, name)
			return in.Status == certs.StatusValid
		})
		return in
	}
	c := client(peb.roots, s.httpsAddr, s.httpAddr, false)

	for _, tc := range []struct{ name, host string }{{"http-01", "http01.moorage.test"}, {"tls-alpn-01", "alpn.moorage.test"}} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, func(o *certs.Options) {
				o.DisableHTTPChallenge = tc.name != "http-01"
				o.DisableTLSALPNChallenge = tc.name == "http-01"
			})
			app := strings.TrimSuffix(tc.host, ".moorage.test")
			s.addApp(t, app, []certs.Site{{Hosts: []string{tc.host}, Mode: spec.TLSAuto}}, []edge.Site{{Hosts: []string{tc.host}, TLS: true}})
			in := waitValid(t, m, app, tc.host)
			if !strings.Contains(in.Issuer, "Pebble") || in.LastError != "" || !in.Managed || in.LastRenewal.IsZero() {
				t.Errorf("List: %+v", in)
			}
			code, body, leaf := get(t, c, "https://"+tc.host+"/")
			if code != 200 || body != "hello from "+app {
				t.Fatalf("GET https://%s/ = %d %q", tc.host, code, body)
			}
			if leaf.VerifyHostname(tc.host) != nil || fmt.Sprintf("%x", leaf.SerialNumber) != in.Serial {
				t.Errorf("served %v (serial %x), List says serial %s", leaf.DNSNames, leaf.SerialNumber, in.Serial)
			}
			// A restarted server serves the stored certificate: no new one.
			if tc.name == "http-01" {
				m.Close()
				m2 := newManager(t, func(o *certs.Options) { o.DataDir = filepath.Dir(m.Dir()) })
				if err := m2.SetApp(app, []certs.Site{{Hosts: []string{tc.host}, Mode: spec.TLSAuto}}); err != nil {
					t.Fatal(err)
				}
				if again := waitValid(t, m2, app, tc.host); again.Serial != in.Serial {
					t.Errorf("after a restart: serial %s, was %s", again.Serial, in.Serial)
				}
				if _, _, leaf := get(t, c, "https://"+tc.host+"/"); fmt.Sprintf("%x", leaf.SerialNumber) != in.Serial {
					t.Errorf("after a restart, served serial %x, was %s", leaf.SerialNumber, in.Serial)
				}
			}
			// Pebble logs its HTTP-01 validations: there must be one for the
			// HTTP-01 name and none for the other (validated by TLS-ALPN-01).
			viaHTTP := strings.Contains(peb.srv.Log(), "validate w/ HTTP: http://"+tc.host+":")
			if viaHTTP != (tc.name == "http-01") {
				t.Errorf("validated over HTTP: %v", viaHTTP)
			}
		})
	}

	t.Run("serve redirect renew", func(t *testing.T) {
		m := newManager(t, nil)
		apex, www := "shop.moorage.test", "www.shop.moorage.test"
		hosts := []string{apex, www}
		s.addApp(t, "shop", []certs.Site{{Hosts: hosts, Mode: spec.TLSAuto}},
			[]edge.Site{{Hosts: hosts, TLS: true, Canonical: apex, HSTS: true}})
		waitValid(t, m, "shop", apex)
		waitValid(t, m, "shop", www)

		resp, err := c.Get("https://" + apex + "/echo?q=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != edge.DefaultHSTS {
			t.Errorf("https apex: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
		if code, body, _ := get(t, c, "https://"+apex+"/echo?q=1"); code != 200 || body != "https "+apex+" /echo?q=1" {
			t.Errorf("https apex: %d %q", code, body)
		}
		port := fmt.Sprint(s.httpsPort)
		for _, r := range []struct{ url, want string }{
			{"http://" + apex + "/a/b?x=1&y=%20", "https://" + apex + ":" + port + "/a/b?x=1&y=%20"},
			{"http://" + www + "/p?q", "https://" + apex + ":" + port + "/p?q"}, // one hop
			{"https://" + www + "/p?q", "https://" + apex + "/p?q"},
		} {
			resp, err := c.Get(r.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != r.want {
				t.Errorf("GET %s = %d Location %q, want 308 %q", r.url, resp.StatusCode, resp.Header.Get("Location"), r.want)
			}
		}
		// A challenge path no certificate is being obtained for is not
		// redirected: the app gets it.
		if code, body, _ := get(t, c, "http://"+apex+"/.well-known/acme-challenge/none"); code != 200 || body != "hello from shop" {
			t.Errorf("challenge path: %d %q", code, body)
		}

		// A name the CA refuses fails on its own, shown in List; the others
		// keep serving.
		s.addApp(t, "bad", []certs.Site{{Hosts: []string{blockedName}, Mode: spec.TLSAuto}},
			[]edge.Site{{Hosts: []string{blockedName}, TLS: true}})
		var bad certs.Info
		eventually(t, 30*time.Second, "the refused name to show as failed", func() bool {
			bad, _ = info(m, "bad", blockedName)
			return bad.Status == certs.StatusFailed
		})
		if !strings.Contains(bad.LastError, "rejectedIdentifier") && !strings.Contains(bad.LastError, "blocked") {
			t.Errorf("last error of the refused name: %q", bad.LastError)
		}
		if _, err := c.Get("https://" + blockedName + "/"); err == nil {
			t.Errorf("a handshake for a name without a certificate succeeded")
		}
		if code, _, _ := get(t, c, "https://"+apex+"/"); code != 200 {
			t.Errorf("apex while another name fails: %d", code)
		}

		// Forced renewal while clients hammer: new connections (each a new
		// handshake) and a keep-alive one; no request fails.
		_, _, before := get(t, c, "https://"+apex+"/")
		h := startHammer(t, s, peb, "https://"+apex+"/", "hello from shop")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Renew(ctx, apex); err != nil {
			t.Fatal(err)
		}
		h.waitSerialNot(t, fmt.Sprintf("%x", before.SerialNumber))
		h.stop(t)
		in, _ := info(m, "shop", apex)
		if in.Serial == fmt.Sprintf("%x", before.SerialNumber) || in.LastError != "" {
			t.Errorf("List after renewal: %+v", in)
		}
		if err := m.Renew(ctx, "nope.moorage.test"); err == nil {
			t.Errorf("Renew of a name no site has: no error")
		}

		checkModes(t, m)
	})

	t.Run("automatic renewal", func(t *testing.T) {
		m := newManager(t, func(o *certs.Options) {
			o.Profile = "shortlived"
			o.RenewCheckInterval = time.Second
			o.RenewalWindowRatio = 0.5
		})
		name := "short.moorage.test"
		s.addApp(t, "short", []certs.Site{{Hosts: []string{name}, Mode: spec.TLSAuto}}, []edge.Site{{Hosts: []string{name}, TLS: true}})
		in := waitValid(t, m, "short", name)
		if d := in.NotAfter.Sub(in.NotBefore); d > time.Minute {
			t.Fatalf("the shortlived profile gave a %s certificate", d)
		}
		h := startHammer(t, s, peb, "https://"+name+"/", "hello from short")
		h.waitSerialNot(t, in.Serial)
		h.stop(t)
		after, _ := info(m, "short", name)
		if !after.LastRenewal.After(in.LastRenewal) {
			t.Errorf("LastRenewal did not move: %v then %v", in.LastRenewal, after.LastRenewal)
		}
	})
}

func portOf(addr string) int {
	var p int
	fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &p)
	return p
}

// hammer sends requests from several clients until stopped and records
// failures and the serials it was served.
type hammer struct {
	done     chan struct{}
	wg       sync.WaitGroup
	requests atomic.Int64
	mu       sync.Mutex
	failures []string
	serials  map[string]int
}

func startHammer(t *testing.T, s *stack, peb *peb, url, want string) *hammer {
	h := &hammer{done: make(chan struct{}), serials: map[string]int{}}
	run := func(keepAlive bool) {
		defer h.wg.Done()
		c := client(peb.roots, s.httpsAddr, s.httpAddr, keepAlive)
		defer c.CloseIdleConnections()
		for {
			select {
			case <-h.done:
				return
			default:
			}
			resp, err := c.Get(url)
			h.requests.Add(1)
			if err != nil {
				h.fail(err.Error())
				continue
			}
			body := readAll(resp)
			if resp.StatusCode != 200 || body != want {
				h.fail(fmt.Sprintf("%d %q", resp.StatusCode, body))
				continue
			}
			if !keepAlive {
				h.mu.Lock()
				h.serials[fmt.Sprintf("%x", resp.TLS.PeerCertificates[0].SerialNumber)]++
				h.mu.Unlock()
			}
		}
	}
	for range 3 {
		h.wg.Add(1)
		go run(false)
	}
	h.wg.Add(1)
	go run(true)
	t.Cleanup(func() { h.stopOnce() })
	return h
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

func (h *hammer) fail(s string) {
	h.mu.Lock()
	h.failures = append(h.failures, s)
	h.mu.Unlock()
}

// waitSerialNot waits until a new connection is served a certificate whose
// serial (hex) is not old.
func (h *hammer) waitSerialNot(t *testing.T, old string) {
	t.Helper()
	eventually(t, 45*time.Second, "a renewed certificate to be served", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for s := range h.serials {
			if s != old {
				return true
			}
		}
		return false
	})
}

var stopOnceMu sync.Mutex

func (h *hammer) stopOnce() {
	stopOnceMu.Lock()
	defer stopOnceMu.Unlock()
	select {
	case <-h.done:
	default:
		close(h.done)
	}
	h.wg.Wait()
}

func (h *hammer) stop(t *testing.T) {
	t.Helper()
	h.stopOnce()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failures) > 0 {
		t.Errorf("%d of %d requests failed during the renewal, e.g. %s", len(h.failures), h.requests.Load(), h.failures[0])
	}
	if len(h.serials) < 2 {
		t.Errorf("served serials: %v", h.serials)
	}
	t.Logf("%d requests, 0 failed, serials served: %v", h.requests.Load(), h.serials)
}

// checkModes asserts that everything under <data-dir>/certs is private:
// directories 0700, files 0600 (lock files aside, which hold no secret).
func checkModes(t *testing.T, m *certs.Manager) {
	t.Helper()
	dir := m.Dir()
	keys := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case strings.HasPrefix(rel, "locks"):
		case d.IsDir():
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, want 0700", rel, fi.Mode().Perm())
			}
		default:
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", rel, fi.Mode().Perm())
			}
			if strings.HasSuffix(p, ".key") {
				keys++
			}
		}
		return nil
	})
	if keys < 3 { // the internal root's, the account's, a certificate's
		t.Errorf("only %d keys under %s", keys, dir)
	}
}

// TestACMEFallbackEAB: a name the first CA refuses is obtained from the
// fallback CA, which requires External Account Binding with known
// credentials; the other names keep coming from the first CA.
func TestACMEFallbackEAB(t *testing.T) {
	s := newStack(t, "127.0.0.1")
	primary := startPebble(t, portOf(s.httpAddr), s.httpsPort, shortLived) // refuses blockedName
	const kid = "moorage-test-kid"
	hmac := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	fallback := pebble.Start(t, pebble.Options{HTTPPort: portOf(s.httpAddr), TLSPort: s.httpsPort, EAB: map[string]string{kid: hmac}})
	// One roots file for both ACME servers' own HTTPS.
	roots := filepath.Join(t.TempDir(), "acme-roots.pem")
	var pemBytes []byte
	for _, f := range []string{primary.caRoot, fallback.CARoot} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes = append(pemBytes, b...)
	}
	if err := os.WriteFile(roots, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := certs.New(certs.Options{
		DataDir: t.TempDir(), Logger: testLogger(t), CA: primary.dir, CARoot: roots, Email: "ops@moorage.test",
		HTTPAddr: s.httpAddr, HTTPSAddr: s.httpsAddr, RetryIntervals: []time.Duration{time.Second},
		Fallback: &certs.Issuer{CA: fallback.Dir, EABKeyID: kid, EABMACKey: hmac},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s.mgr.Store(m)
	good := "good.moorage.test"
	hosts := []string{good, blockedName}
	s.addApp(t, "fb", []certs.Site{{Hosts: hosts, Mode: spec.TLSAuto}}, []edge.Site{{Hosts: hosts, TLS: true}})
	for _, name := range hosts {
		eventually(t, 60*time.Second, "a certificate for "+name, func() bool {
			in, _ := info(m, "fb", name)
			return in.Status == certs.StatusValid
		})
	}
	c := client(nil, s.httpsAddr, s.httpAddr, false)
	c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true // verified below, against each CA
	for _, tc := range []struct {
		name      string
		from, not *x509.CertPool
		fromWhich string
	}{{blockedName, fallback.Roots, primary.roots, "the fallback"}, {good, primary.roots, fallback.Roots, "the first CA"}} {
		resp, err := c.Get("https://" + tc.name + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		chain := resp.TLS.PeerCertificates
		inter := x509.NewCertPool()
		for _, ic := range chain[1:] {
			inter.AddCert(ic)
		}
		verify := func(roots *x509.CertPool) error {
			_, err := chain[0].Verify(x509.VerifyOptions{DNSName: tc.name, Roots: roots, Intermediates: inter})
			return err
		}
		if resp.StatusCode != 200 || verify(tc.from) != nil || verify(tc.not) == nil {
			t.Errorf("%s: %d, want a certificate from %s (verify: %v; against the other: %v)", tc.name, resp.StatusCode, tc.fromWhich, verify(tc.from), verify(tc.not))
		}
	}
}

// TestACMERetry: a validation the CA cannot complete (the name resolves to
// an address where nothing listens) fails and is retried on its own, with
// the backoff Options.RetryIntervals sets, until it succeeds once DNS is
// fixed: no redeploy, no restart; moorage certs shows the error and the
// next attempt meanwhile.
func TestACMERetry(t *testing.T) {
	s := newStack(t, "127.0.0.1")
	peb := startPebble(t, portOf(s.httpAddr), s.httpsPort, shortLived)
	m, err := certs.New(certs.Options{
		DataDir: t.TempDir(), Logger: testLogger(t), CA: peb.dir, CARoot: peb.caRoot, Email: "ops@moorage.test",
		HTTPAddr: s.httpAddr, HTTPSAddr: s.httpsAddr, RetryIntervals: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s.mgr.Store(m)
	name := "later.moorage.test"
	peb.srv.SetA(t, name, "127.0.0.2") // the CA finds nobody there
	s.addApp(t, "later", []certs.Site{{Hosts: []string{name}, Mode: spec.TLSAuto}}, []edge.Site{{Hosts: []string{name}, TLS: true}})

	var failed certs.Info
	eventually(t, 60*time.Second, "the name to fail", func() bool {
		failed, _ = info(m, "later", name)
		return failed.Status == certs.StatusFailed && failed.LastError != "" && !failed.NextAttempt.IsZero()
	})
	if !strings.Contains(failed.LastError, "127.0.0.2") && !strings.Contains(failed.LastError, "connection refused") {
		t.Errorf("last error: %q", failed.LastError)
	}
	// It is retried: a later attempt fails again.
	eventually(t, 60*time.Second, "a retry", func() bool {
		in, _ := info(m, "later", name)
		return in.LastErrorAt.After(failed.LastErrorAt)
	})
	peb.srv.ClearA(t, name) // DNS fixed
	var in certs.Info
	eventually(t, 60*time.Second, "a certificate after the retry", func() bool {
		in, _ = info(m, "later", name)
		return in.Status == certs.StatusValid
	})
	if in.LastError != "" || !in.NextAttempt.IsZero() {
		t.Errorf("after success: %+v", in)
	}
	if code, body, _ := get(t, client(peb.roots, s.httpsAddr, s.httpAddr, false), "https://"+name+"/"); code != 200 || body != "hello from later" {
		t.Errorf("GET https://%s/ = %d %q", name, code, body)
	}
}
