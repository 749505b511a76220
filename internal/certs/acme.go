package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// managedName is an ACME name being managed: a goroutine loads or obtains
// its certificate; certmagic's maintenance renews it once cached.
type managedName struct {
	cancel context.CancelFunc
}

// nameStatus is the obtain/renew history of an ACME name, from certmagic's
// events.
type nameStatus struct {
	obtaining   bool
	lastRenewal time.Time
	lastErr     string
	errAt       time.Time
}

// setupACME builds the certmagic cache, config and issuers.
func (m *Manager) setupACME() error {
	o := m.opts
	zl := zapLogger(m.log.With("component", "certmagic").Handler())
	ca := o.CA
	switch {
	case o.Staging && ca != "" && ca != LetsEncryptStagingCA:
		return fmt.Errorf("certs: the staging switch and an ACME CA (%s) exclude each other", ca)
	case o.Staging:
		ca = LetsEncryptStagingCA
	case ca == "":
		ca = LetsEncryptCA
	}
	if err := checkCAURL(ca); err != nil {
		return err
	}
	var roots *x509.CertPool
	if o.CARoot != "" {
		pemBytes, err := os.ReadFile(o.CARoot)
		if err != nil {
			return fmt.Errorf("certs: acme ca root: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("certs: acme ca root %s: no PEM certificate in it", o.CARoot)
		}
	}
	httpHost, httpPort, err := splitAddr(o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("certs: http address: %w", err)
	}
	tlsHost, tlsPort, err := splitAddr(o.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("certs: https address: %w", err)
	}
	noHTTP := o.DisableHTTPChallenge || httpPort == 0
	noTLSALPN := o.DisableTLSALPNChallenge || tlsPort == 0
	m.acmeOK = !noHTTP || !noTLSALPN

	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic.Load(), nil },
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             zl,
	})
	cfg := certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: o.RenewalWindowRatio,
		OnEvent:            m.onEvent,
		ShouldEmitFunc:     func(ev string) bool { return ev == "cert_obtaining" || ev == "cert_obtained" || ev == "cert_failed" },
		Storage:            &certmagic.FileStorage{Path: m.dir},
		Logger:             zl,
	})
	// The challenge solvers try to listen on these addresses and, finding
	// the server's own listeners there, leave the challenges to them
	// (HandleHTTPChallenge, GetCertificate); only one of ListenHost serves
	// both, so it follows the HTTP listener when both are set.
	listenHost := httpHost
	if noHTTP {
		listenHost = tlsHost
	}
	primary := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA: ca, Email: o.Email, Agreed: true, Profile: o.Profile, TrustedRoots: roots,
		DisableHTTPChallenge: noHTTP, DisableTLSALPNChallenge: noTLSALPN,
		ListenHost: listenHost, AltHTTPPort: httpPort, AltTLSALPNPort: tlsPort,
		Logger: zl,
	})
	m.issuers = []*certmagic.ACMEIssuer{primary}
	if f := o.Fallback; f != nil {
		if err := checkCAURL(f.CA); err != nil {
			return fmt.Errorf("fallback issuer: %w", err)
		}
		email := f.Email
		if email == "" {
			email = o.Email
		}
		tmpl := certmagic.ACMEIssuer{
			CA: f.CA, Email: email, Agreed: true,
			DisableHTTPChallenge: noHTTP, DisableTLSALPNChallenge: noTLSALPN,
			ListenHost: listenHost, AltHTTPPort: httpPort, AltTLSALPNPort: tlsPort,
			Logger: zl,
		}
		if f.EABKeyID != "" || f.EABMACKey != "" {
			if f.EABKeyID == "" || f.EABMACKey == "" {
				return fmt.Errorf("certs: fallback issuer: external account binding needs both the key ID and the HMAC key")
			}
			tmpl.ExternalAccount = &acme.EAB{KeyID: f.EABKeyID, MACKey: f.EABMACKey}
		}
		m.issuers = append(m.issuers, certmagic.NewACMEIssuer(cfg, tmpl))
	}
	cfg.Issuers = nil // certmagic.New put Let's Encrypt there by default
	for _, iss := range m.issuers {
		cfg.Issuers = append(cfg.Issuers, iss)
	}
	m.magic.Store(cfg)
	return nil
}

func checkCAURL(ca string) error {
	u, err := url.Parse(ca)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("certs: acme ca %q: want a directory URL such as %s", ca, LetsEncryptCA)
	}
	if u.Scheme == "http" && !certmagic.SubjectIsInternal(u.Hostname()) {
		return fmt.Errorf("certs: acme ca %q: a public ACME server must be reached over https", ca)
	}
	return nil
}

// splitAddr splits a listener address; "" gives port 0.
func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = ""
	}
	return host, p, nil
}

// syncManagedLocked starts managing the names of want that are not managed
// yet and stops managing the others.
func (m *Manager) syncManagedLocked(want map[string]bool) {
	var drop []certmagic.SubjectIssuer
	for name, mn := range m.managed {
		if !want[name] {
			mn.cancel()
			delete(m.managed, name)
			drop = append(drop, certmagic.SubjectIssuer{Subject: name})
			m.statusMu.Lock()
			delete(m.status, name)
			m.statusMu.Unlock()
		}
	}
	if len(drop) > 0 {
		m.cache.RemoveManaged(drop)
	}
	for name := range want {
		if m.managed[name] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(m.ctx)
		mn := &managedName{cancel: cancel}
		m.managed[name] = mn
		m.statusMu.Lock()
		if m.status[name] == nil {
			m.status[name] = &nameStatus{}
		}
		m.statusMu.Unlock()
		m.wg.Add(1)
		go m.manage(ctx, name)
	}
}

// manage loads name's certificate from storage, renewing it if due, or
// obtains one, retrying with backoff (certmagic's: 1, 2, 2, 5, 10 minutes…
// up to a day between attempts, for 30 days) until it succeeds or name is
// dropped. Failures are recorded by onEvent and show in List.
func (m *Manager) manage(ctx context.Context, name string) {
	defer m.wg.Done()
	cfg := m.magic.Load()
	cert, err := cfg.CacheManagedCertificate(ctx, name)
	if err == nil {
		m.keepIfManaged(name)
		if cert.NeedsRenewal(cfg) {
			if err := cfg.RenewCertAsync(ctx, name, false); err == nil {
				m.reload(ctx, name)
			}
		}
		return
	}
	if !errors.Is(err, fs.ErrNotExist) {
		m.noteError(name, fmt.Errorf("load the stored certificate: %w", err))
	}
	if err := cfg.ObtainCertAsync(ctx, name); err != nil {
		return // dropped, or closed (failed attempts were recorded)
	}
	m.reload(ctx, name)
}

// reload puts name's certificate from storage into the cache, replacing
// the ones cached before.
func (m *Manager) reload(ctx context.Context, name string) {
	var old []string
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if slices.Contains(c.Names, name) {
			old = append(old, c.Hash())
		}
	}
	c, err := m.magic.Load().CacheManagedCertificate(ctx, name)
	if err != nil {
		m.noteError(name, fmt.Errorf("load the new certificate: %w", err))
		return
	}
	old = slices.DeleteFunc(old, func(h string) bool { return h == c.Hash() })
	if len(old) > 0 {
		m.cache.Remove(old)
	}
	m.keepIfManaged(name)
}

// keepIfManaged undoes a caching that raced with name being dropped.
func (m *Manager) keepIfManaged(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.managed[name] == nil {
		m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: name}})
	}
}

// Renew renews the ACME certificate of name now, even if it is not due,
// and serves the new one from the next handshake on (connections already
// open keep theirs). It blocks until the CA issued it or ctx ends (attempts
// that fail are retried with backoff).
func (m *Manager) Renew(ctx context.Context, name string) error {
	name, err := NormalizeHost(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	mn := m.managed[name]
	closed := m.closed
	m.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case mn == nil:
		return fmt.Errorf("%w: %q (no app serves it with tls: auto)", ErrNotManaged, name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.ctx, cancel)
	defer stop()
	if err := m.magic.Load().RenewCertAsync(ctx, name, true); err != nil {
		return fmt.Errorf("renew %s: %w", name, err)
	}
	m.reload(ctx, name)
	return nil
}

// onEvent records certmagic's obtain/renew events; it runs synchronously
// in certmagic's goroutines, so it only takes a short lock.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	if name == "" {
		return nil
	}
	renewal, _ := data["renewal"].(bool)
	m.statusMu.Lock()
	st := m.status[name]
	if st == nil {
		m.statusMu.Unlock()
		return nil // not (or no longer) ours
	}
	switch event {
	case "cert_obtaining":
		st.obtaining = true
	case "cert_obtained":
		st.obtaining = false
		st.lastRenewal = time.Now()
		st.lastErr, st.errAt = "", time.Time{}
	case "cert_failed":
		st.obtaining = false
		st.lastErr = fmt.Sprint(data["error"])
		st.errAt = time.Now()
	}
	m.statusMu.Unlock()
	what := "certificate"
	if renewal {
		what = "certificate renewal"
	}
	switch event {
	case "cert_obtained":
		m.log.Info(what+" obtained", "name", name, "issuer", data["issuer"])
	case "cert_failed":
		m.log.Warn(what+" failed; retrying with backoff", "name", name, "err", data["error"])
	}
	return nil
}

// noteError records an error of name that is not a certmagic event.
func (m *Manager) noteError(name string, err error) {
	m.log.Warn("certificate", "name", name, "err", err)
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	if st := m.status[name]; st != nil {
		st.lastErr, st.errAt = err.Error(), time.Now()
	}
}
