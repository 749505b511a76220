// Package certs provides the certificates of the proxy's HTTPS listener:
// ACME certificates (tls: auto) obtained and renewed through certmagic with
// the HTTP-01 and TLS-ALPN-01 challenges; moorage's own CA (tls: internal),
// which issues short-lived certificates for IP addresses and local names on
// the first handshake that needs one; and own certificate files (tls:
// {cert, key}), reloaded when they change.
//
// Apps' TLS hosts are set per app, atomically (SetApp, RemoveApp), like the
// proxy's routes; Check validates an app's sites before a deploy starts.
// Handshakes read an immutable snapshot without locking.
package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"github.com/moorage/moorage/internal/spec"
)

const (
	modeAuto     = spec.TLSAuto
	modeInternal = spec.TLSInternal
	modeFiles    = spec.TLSFiles
	modeOff      = spec.TLSOff // a site without TLS: it claims its hosts, serves no certificate
)

// Well-known ACME directories.
const (
	LetsEncryptCA        = certmagic.LetsEncryptProductionCA
	LetsEncryptStagingCA = certmagic.LetsEncryptStagingCA
	ZeroSSLCA            = certmagic.ZeroSSLProductionCA
)

// Options configures a Manager. Zero fields take the defaults documented
// on each.
type Options struct {
	// DataDir is the server's data dir; certificates, keys and ACME
	// accounts live in DataDir/certs (directories 0700, files 0600).
	DataDir string
	Logger  *slog.Logger

	// Email is the ACME account's contact (expiry and policy notices).
	// Optional, recommended.
	Email string
	// CA is the ACME directory URL (default Let's Encrypt production).
	CA string
	// Staging uses Let's Encrypt's staging directory (untrusted
	// certificates, generous rate limits) instead; not with CA.
	Staging bool
	// CARoot is a PEM file of root certificates to trust, besides the
	// system's, for the ACME servers' own HTTPS (a private ACME CA, and
	// the fallback's).
	CARoot string
	// Profile selects an ACME certificate profile the CA offers (optional).
	Profile string
	// Fallback, when set, is tried when CA fails to issue.
	Fallback *Issuer

	// HTTPAddr and HTTPSAddr are the addresses the server's plain HTTP and
	// HTTPS listeners are bound to. ACME challenges arrive there: HTTP-01
	// on the HTTP listener (whose handler must call HandleHTTPChallenge),
	// TLS-ALPN-01 on the HTTPS listener (whose tls.Config is TLSConfig).
	// Empty: that challenge is not used.
	HTTPAddr, HTTPSAddr string
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn one challenge
	// off (for example when port 80 is not reachable from the internet).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool

	// RenewalWindowRatio: an ACME certificate is renewed once this fraction
	// of its lifetime remains (default 1/3), or earlier when the CA's
	// renewal information (ARI) says so.
	RenewalWindowRatio float64
	// RenewCheckInterval is how often certificates are checked for renewal
	// (default 10 minutes).
	RenewCheckInterval time.Duration
	// RetryIntervals are the waits between failed attempts to obtain a
	// certificate: the first after the first failure, and so on; the last
	// one repeats for as long as the name is served (default
	// DefaultRetryIntervals). Renewals are retried by certmagic's
	// maintenance on its own schedule.
	RetryIntervals []time.Duration

	// InternalLifetime is the lifetime of the internal CA's leaf
	// certificates (default DefaultInternalLifetime).
	InternalLifetime time.Duration
	// ExtraIPs are added to every IP certificate of the internal CA: the
	// server's public addresses when it is reached through NAT (clients do
	// not send the address they connect to, so the server only sees its
	// local one).
	ExtraIPs []net.IP

	// FileCheckInterval bounds how often own certificate files are checked
	// for changes (default DefaultFileCheckInterval).
	FileCheckInterval time.Duration
}

// Issuer is an additional ACME issuer, e.g. ZeroSSL with External Account
// Binding credentials.
type Issuer struct {
	CA        string // ACME directory URL
	Email     string // default Options.Email
	EABKeyID  string // External Account Binding key ID, if the CA requires one
	EABMACKey string // External Account Binding HMAC key (base64url)
}

// Manager provides the certificates of the HTTPS listener. Use New; Close
// it when done.
type Manager struct {
	opts Options
	log  *slog.Logger
	dir  string
	ca   *internalCA

	cache   *certmagic.Cache
	magic   atomic.Pointer[certmagic.Config]
	issuers []*certmagic.ACMEIssuer
	// obtainCfg obtains new certificates, one attempt per call (manage
	// retries with RetryIntervals); it shares the cache, storage and
	// issuers of magic.
	obtainCfg *certmagic.Config
	acme      acmePolicy

	table atomic.Pointer[table]

	ctx    context.Context // parent of the ACME goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // serializes SetApp, RemoveApp and Close; guards below
	apps    map[string][]site
	entries map[string][]*entry
	managed map[string]*managedName // ACME names being managed
	closed  bool

	statusMu sync.Mutex
	status   map[string]*nameStatus // ACME names: obtain/renew history
}

// New returns a Manager: it creates DataDir/certs and the internal CA
// (once per data dir), and starts certificate maintenance.
func New(opts Options) (*Manager, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("certs: no data dir")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FileCheckInterval <= 0 {
		opts.FileCheckInterval = DefaultFileCheckInterval
	}
	if len(opts.RetryIntervals) == 0 {
		opts.RetryIntervals = DefaultRetryIntervals
	}
	dir := filepath.Join(opts.DataDir, "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	ca, err := loadOrCreateCA(filepath.Join(dir, internalDir), opts.InternalLifetime)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts: opts, log: opts.Logger, dir: dir, ca: ca,
		ctx: ctx, cancel: cancel,
		apps: map[string][]site{}, entries: map[string][]*entry{},
		managed: map[string]*managedName{}, status: map[string]*nameStatus{},
	}
	if err := m.setupACME(); err != nil {
		cancel()
		if m.cache != nil {
			m.cache.Stop()
		}
		return nil, err
	}
	m.table.Store(buildTable(nil, opts.ExtraIPs))
	return m, nil
}

// Close stops certificate maintenance and waits for the goroutines the
// Manager started. Handshakes keep being answered from what is loaded.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
	m.cache.Stop()
	return nil
}

// Dir is where certificates, keys and ACME accounts are stored:
// <data-dir>/certs.
func (m *Manager) Dir() string { return m.dir }

// RootPEM returns the internal CA's root certificate, PEM-encoded: what
// clients must trust to accept tls: internal certificates.
func (m *Manager) RootPEM() []byte { return append([]byte(nil), m.ca.rootPEM...) }

// TLSConfig returns the tls.Config of the HTTPS listener: certificates by
// SNI (by the local IP address without SNI), HTTP/2, and the TLS-ALPN-01
// challenge.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: m.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1", acmez.ACMETLS1Protocol},
		MinVersion:     tls.VersionTLS12,
	}
}

// HandleHTTPChallenge answers an ACME HTTP-01 challenge request (GET
// /.well-known/acme-challenge/TOKEN) for a certificate this Manager is
// obtaining, and reports whether it did; otherwise it writes nothing.
// Mount it on the plain HTTP listener (edge.Options.Challenge).
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	for _, iss := range m.issuers {
		if iss.HandleHTTPChallenge(w, r) {
			return true
		}
	}
	return false
}

// GetCertificate implements tls.Config.GetCertificate: the certificate of
// the site that serves the client's SNI name (exact host, else wildcard,
// else the default route); without SNI (clients connecting to an IP
// address), the one for the local address of the connection.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		return m.magic.Load().GetCertificate(hello) // a TLS-ALPN-01 challenge
	}
	t := m.table.Load()
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if name == "" || isIP(name) {
		return m.ipCertificate(t, hello, name)
	}
	e := t.lookup(name)
	if e == nil {
		return nil, fmt.Errorf("%w for %q: no app serves it over HTTPS", ErrNoCertificate, name)
	}
	switch e.mode {
	case modeOff:
		return nil, fmt.Errorf("%w for %q: app %q serves it without TLS (tls: off)", ErrNoCertificate, name, e.app)
	case modeAuto:
		c, err := m.magic.Load().GetCertificate(hello)
		if err != nil {
			return nil, fmt.Errorf("%w for %q yet (see moorage certs): %v", ErrNoCertificate, name, err)
		}
		return c, nil
	case modeFiles:
		return e.files.get(), nil
	default:
		san := name
		switch {
		case isWildcard(e.host):
			san = e.host // one certificate for the whole wildcard
		case e.host == "":
			// The default route answers any name: only well-formed ones.
			if c, err := NormalizeHost(name); err != nil || c != name || isWildcard(c) {
				return nil, fmt.Errorf("%w for %q: not a host name", ErrNoCertificate, name)
			}
		}
		return m.ca.get(leafRequest{key: "dns|" + san, app: e.app, host: e.host, names: []string{san}, limited: e.host == ""})
	}
}

// ipCertificate serves a client that connected to an IP address: the site
// that lists the address (the SNI one, else the connection's local one),
// else the default route; behind NAT, where the local address is a private
// one no site lists, the site that lists IP addresses (when one app does).
func (m *Manager) ipCertificate(t *table, hello *tls.ClientHelloInfo, sni string) (*tls.Certificate, error) {
	local := localIP(hello.Conn)
	var e *entry
	if sni != "" {
		e = t.exact[normalizeIP(sni)]
	}
	if e == nil && local.IsValid() {
		e = t.exact[local.String()]
	}
	if e == nil {
		e = t.fallback
		if e == nil || e.mode == modeOff || e.mode == modeAuto {
			switch {
			case t.ipOwner != nil:
				e = t.ipOwner
			case len(t.ipApps) > 1:
				return nil, fmt.Errorf("%w for address %s: no app lists it in hosts:, and apps %s all list IP addresses, so the certificate to serve is ambiguous: add %s to the hosts: of the app it belongs to, or give the default route tls: internal", ErrNoCertificate, local, strings.Join(t.ipApps, ", "), local)
			}
		}
	}
	if e == nil {
		return nil, fmt.Errorf("%w for address %s: no app serves an IP address over HTTPS: list the address the clients connect to in an app's hosts: with tls: internal (behind NAT, the public address), or give the default route tls: internal", ErrNoCertificate, local)
	}
	switch e.mode {
	case modeFiles:
		return e.files.get(), nil
	case modeInternal:
		ips := t.ips
		key := "ip|" + t.ipKey
		if local.IsValid() && !containsIP(ips, local) {
			ips = append([]net.IP{net.IP(local.AsSlice())}, ips...)
			key = "ip|" + local.String() + "|" + t.ipKey
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("%w: the connection has no local IP address", ErrNoCertificate)
		}
		return m.ca.get(leafRequest{key: key, app: e.app, host: e.host, ips: ips})
	case modeOff:
		return nil, fmt.Errorf("%w for address %s: %s of app %q has tls: off", ErrNoCertificate, local, hostName(e.host), e.app)
	default:
		return nil, fmt.Errorf("%w for address %s: tls: auto does not cover IP addresses (use tls: internal)", ErrNoCertificate, local)
	}
}

// localIP is the local address of c, or the zero Addr.
func localIP(c net.Conn) netip.Addr {
	if c == nil {
		return netip.Addr{}
	}
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

func normalizeIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return a.Unmap().WithZone("").String()
}

func containsIP(ips []net.IP, a netip.Addr) bool {
	for _, ip := range ips {
		if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a {
			return true
		}
	}
	return false
}

// Check reports whether app could serve sites: every host valid, no
// wildcard, IP address or (from a public CA) private name with tls: auto,
// no host another app claims, own
// certificate files readable, matching their key and covering the hosts.
// It changes nothing; the engine calls it before a deploy starts.
func (m *Manager) Check(app string, sites []Site) error {
	ns, err := validate(app, sites, m.acme)
	if err != nil {
		return err
	}
	if err := m.table.Load().conflict(app, ns); err != nil {
		return err
	}
	for _, s := range ns {
		if s.mode == modeFiles {
			if _, err := loadFiles(s.cert, s.key, s.hosts, time.Now()); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetApp atomically replaces app's TLS sites. It validates them fully
// first (as Check, except that files an unchanged site already serves are
// not re-read): on error nothing changes. New tls: auto names are obtained
// (or loaded from storage) in the background; names no site has any more
// stop being served and renewed. An empty sites is RemoveApp.
func (m *Manager) SetApp(app string, sites []Site) error {
	ns, err := validate(app, sites, m.acme)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.table.Load().conflict(app, ns); err != nil {
		return err
	}
	// Build the app's entries; reuse the file certificates of unchanged
	// sites (they reload themselves), load the others now.
	old := map[string]*fileCert{}
	for _, e := range m.entries[app] {
		if e.files != nil {
			old[fileKey(e.files.certPath, e.files.keyPath, e.files.hosts)] = e.files
		}
	}
	var entries []*entry
	for _, s := range ns {
		var fc *fileCert
		if s.mode == modeFiles {
			k := fileKey(s.cert, s.key, s.hosts)
			if fc = old[k]; fc == nil {
				if fc, err = newFileCert(s.cert, s.key, s.hosts, m.opts.FileCheckInterval, m.log); err != nil {
					return err
				}
				old[k] = fc
			}
		}
		hosts := s.hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			entries = append(entries, &entry{app: app, mode: s.mode, host: h, files: fc})
		}
	}
	if len(entries) == 0 {
		delete(m.apps, app)
		delete(m.entries, app)
	} else {
		m.apps[app] = ns
		m.entries[app] = entries
	}
	m.swapLocked()
	return nil
}

// RemoveApp forgets app's TLS sites: its names stop being served and
// renewed (stored certificates stay on disk for a later deploy).
func (m *Manager) RemoveApp(app string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[app]; !ok {
		return
	}
	delete(m.apps, app)
	delete(m.entries, app)
	m.swapLocked()
}

// swapLocked publishes a new table from m.entries and brings ACME
// management and the internal CA's cache in line with it.
func (m *Manager) swapLocked() {
	t := buildTable(m.entries, m.opts.ExtraIPs)
	m.table.Store(t)
	want := map[string]bool{}
	for _, e := range t.exact {
		if e.mode == modeAuto {
			want[e.host] = true
		}
	}
	if !m.closed {
		m.syncManagedLocked(want)
	}
	m.ca.prune(func(app, host string) bool {
		e := t.owner(host)
		return e != nil && e.app == app && e.mode == modeInternal
	})
}

func fileKey(cert, key string, hosts []string) string {
	return cert + "\x00" + key + "\x00" + strings.Join(hosts, ",")
}

func hostConflict(host, other string) error {
	if host == "" {
		return fmt.Errorf("%w: the default route (no hosts) is already served by app %q: give this app's routes hosts:, or deploy %q with hosts: of its own first", ErrHostConflict, other, other)
	}
	return fmt.Errorf("%w: host %q is already served by app %q: remove it from the hosts: of %q and deploy that app first, or use another host", ErrHostConflict, host, other, other)
}

// DeleteCertificates deletes the stored ACME certificates (and their keys)
// of hosts, once no app serves them (`moorage apps destroy`). It returns
// the directories it deleted; a host without one is skipped.
func (m *Manager) DeleteCertificates(hosts []string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var gone []string
	var errs []error
	issuers, _ := filepath.Glob(filepath.Join(m.dir, "certificates", "*"))
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, "/\\") || h == "." || h == ".." {
			continue
		}
		for _, is := range issuers {
			d := filepath.Join(is, h)
			if _, err := os.Stat(d); err != nil {
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, err)
				continue
			}
			gone = append(gone, d)
		}
	}
	return gone, errors.Join(errs...)
}
