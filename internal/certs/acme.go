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
	"strings"
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
// events and manage's attempts.
type nameStatus struct {
	obtaining   bool
	lastRenewal time.Time
	lastErr     string
	errAt       time.Time
	nextAttempt time.Time // when a failed obtain is tried again (zero: not waiting)
}

// DefaultRetryIntervals are the waits between failed attempts to obtain a
// certificate (Options.RetryIntervals): quick at first, for a DNS record
// or a firewall rule just fixed, then spaced out up to every 6 hours,
// forever. After a failure, retries for Let's Encrypt's production CA go
// through its staging CA first (certmagic's rule), so they do not use up
// the production CA's limit on failed validations.
var DefaultRetryIntervals = []time.Duration{
	time.Minute, 2 * time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	10 * time.Minute, 10 * time.Minute, 20 * time.Minute, 20 * time.Minute, 20 * time.Minute,
	30 * time.Minute, 30 * time.Minute, time.Hour, time.Hour, 2 * time.Hour, 3 * time.Hour,
	6 * time.Hour,
}

// publicCAHosts are the ACME servers of public CAs, which only certify
// public domain names.
var publicCAHosts = map[string]string{
	"api.letsencrypt.org": "Let's Encrypt", // and acme-staging-v02.api.letsencrypt.org
	"acme.zerossl.com":    "ZeroSSL",
	"api.pki.goog":        "Google Trust Services",
	"api.buypass.com":     "Buypass",
	"acme.ssl.com":        "SSL.com",
}

// publicCA names the public CA whose ACME directory ca is, or "".
func publicCA(ca string) string {
	u, err := url.Parse(ca)
	if err != nil {
		return ""
	}
	h := strings.ToLower(u.Hostname())
	for suffix, name := range publicCAHosts {
		if h == suffix || strings.HasSuffix(h, "."+suffix) {
			return name
		}
	}
	return ""
}

// oneAttempt is an issuer as obtainCfg uses it: it never prompts on
// standard input for an email address, which certmagic does in its
// interactive (one-attempt) mode when none is configured.
type oneAttempt struct{ *certmagic.ACMEIssuer }

func (i oneAttempt) PreCheck(ctx context.Context, names []string, _ bool) error {
	return i.ACMEIssuer.PreCheck(ctx, names, false)
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
	switch {
	case !noHTTP || !noTLSALPN:
	case o.DisableHTTPChallenge && o.DisableTLSALPNChallenge:
		m.acme.off = "both ACME challenges are turned off on this server (--acme-challenges): allow http-01, tls-alpn-01 or both, or use tls: internal or tls: {cert, key}"
	case o.DisableHTTPChallenge:
		m.acme.off = "the HTTP-01 challenge is turned off (--acme-challenges) and the server has no HTTPS listener for TLS-ALPN-01: allow http-01, or give the server --https"
	case o.DisableTLSALPNChallenge:
		m.acme.off = "the TLS-ALPN-01 challenge is turned off (--acme-challenges) and the server has no HTTP listener for HTTP-01: allow tls-alpn-01, or give the server --http"
	default:
		m.acme.off = "the server has neither an HTTP nor an HTTPS listener to answer ACME challenges on"
	}

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
			CA: f.CA, Email: email, Agreed: true, TrustedRoots: roots,
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
	m.obtainCfg = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: o.RenewalWindowRatio,
		OnEvent:            m.onEvent,
		ShouldEmitFunc:     cfg.ShouldEmitFunc,
		Storage:            cfg.Storage,
		Logger:             zl,
	})
	m.obtainCfg.Issuers = nil
	var public []string
	allPublic := true
	for _, iss := range m.issuers {
		cfg.Issuers = append(cfg.Issuers, iss)
		m.obtainCfg.Issuers = append(m.obtainCfg.Issuers, oneAttempt{iss})
		switch name := publicCA(iss.CA); {
		case name == "":
			allPublic = false // a private CA may certify any name
		case !slices.Contains(public, name):
			public = append(public, name)
		}
	}
	if allPublic {
		m.acme.publicCA = strings.Join(public, " and ")
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
// obtains one, retrying failed attempts after Options.RetryIntervals (the
// last one repeating) until it succeeds or name is dropped: a name is
// never given up on while a site serves it. Failures are recorded and
// show in List, with the time of the next attempt.
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
		err = fmt.Errorf("load the stored certificate: %w", err)
		m.log.Warn("certificate", "name", name, "err", errText(err))
		m.noteError(name, err)
	}
	for attempts := 0; ; attempts++ {
		// certmagic reads the attempt number: a retry for Let's Encrypt's
		// production CA tries its staging CA first.
		actx := context.WithValue(ctx, certmagic.AttemptsCtxKey, &attempts)
		err := m.obtainCfg.ObtainCertSync(actx, name)
		if ctx.Err() != nil {
			return // dropped, or closed
		}
		if err == nil {
			m.setNextAttempt(name, time.Time{})
			m.reload(ctx, name)
			return
		}
		wait := m.opts.RetryIntervals[min(attempts, len(m.opts.RetryIntervals)-1)]
		m.noteError(name, err)
		m.setNextAttempt(name, time.Now().Add(wait))
		m.log.Warn("certificate failed; retrying", "name", name, "attempt", attempts+1, "retry_in", wait, "err", errText(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
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
		err = fmt.Errorf("load the new certificate: %w", err)
		m.log.Warn("certificate", "name", name, "err", errText(err))
		m.noteError(name, err)
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
		err, _ := data["error"].(error)
		if err == nil {
			err = fmt.Errorf("%v", data["error"])
		}
		st.lastErr = errText(err)
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
		m.log.Warn(what+" failed", "name", name, "err", data["error"])
	}
	return nil
}

// noteError records an error of name.
func (m *Manager) noteError(name string, err error) {
	m.log.Debug("certificate", "name", name, "err", err)
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	if st := m.status[name]; st != nil {
		st.lastErr, st.errAt = errText(err), time.Now()
	}
}

// setNextAttempt records when name is tried again (zero: it is not
// waiting).
func (m *Manager) setNextAttempt(name string, at time.Time) {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	if st := m.status[name]; st != nil {
		st.nextAttempt = at
	}
}

// errText is an ACME failure as moorage certs shows it: the CA's problem
// (its type and detail, which say what the CA saw) rather than the chain
// of wrappers around it.
func errText(err error) string {
	var p acme.Problem
	if !errors.As(err, &p) {
		return err.Error()
	}
	s := strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:") + ": " + p.Detail
	for _, sp := range p.Subproblems {
		s += "; " + strings.TrimPrefix(sp.Type, "urn:ietf:params:acme:error:") + ": " + sp.Detail
	}
	return s
}
