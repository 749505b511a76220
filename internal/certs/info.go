package certs

import (
	"cmp"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Statuses of a certificate in List.
const (
	StatusValid   = "valid"   // a certificate is served
	StatusPending = "pending" // being obtained, or issued on the first handshake (internal)
	StatusFailed  = "failed"  // none yet: the last attempt failed (LastError); retried with backoff
	StatusExpired = "expired" // the served certificate has expired
)

// Info describes one certificate, for `moorage certs`.
type Info struct {
	App    string   `json:"app"`
	Mode   string   `json:"mode"`  // spec.TLSAuto, spec.TLSInternal or spec.TLSFiles
	Names  []string `json:"names"` // what it covers; for a pending one, the hosts it will cover
	Status string   `json:"status"`
	Issuer string   `json:"issuer,omitempty"`
	Serial string   `json:"serial,omitempty"` // hex
	// NotBefore and NotAfter bound the certificate's validity (zero: none
	// yet).
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// LastRenewal is when it was last obtained or renewed (ACME, internal)
	// or loaded from its files (own certificates), by this server process.
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// LastError is the last failure to obtain, renew or reload it, cleared
	// by the next success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextAttempt is when a certificate that could not be obtained is
	// tried again (ACME; zero when no attempt is waiting).
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Managed: moorage renews it (auto, internal); false for own files.
	Managed bool `json:"managed"`
}

// List describes every certificate the current sites use, sorted by app
// and name.
func (m *Manager) List() []Info {
	m.mu.Lock()
	entries := make([]*entry, 0)
	for _, es := range m.entries {
		entries = append(entries, es...)
	}
	m.mu.Unlock()

	now := time.Now()
	var out []Info
	seenFiles := map[*fileCert]bool{}
	issued := map[string]bool{} // app + host of the internal leaves
	for _, l := range m.ca.snapshot() {
		in := certInfo(l.app, modeInternal, l.cert.Leaf, now)
		in.Managed = true
		in.LastRenewal = l.cert.Leaf.NotBefore.Add(clockSkew)
		out = append(out, in)
		issued[l.app+"\x00"+l.host] = true
	}
	pending := map[string]*Info{} // app → its internal hosts without a leaf yet
	for _, e := range entries {
		switch e.mode {
		case modeOff:
		case modeAuto:
			out = append(out, m.acmeInfo(e.app, e.host, now))
		case modeFiles:
			if seenFiles[e.files] {
				continue
			}
			seenFiles[e.files] = true
			lf, lastErr, errAt := e.files.status()
			in := certInfo(e.app, modeFiles, lf.cert.Leaf, now)
			in.LastRenewal, in.LastError, in.LastErrorAt = lf.loadedAt, lastErr, errAt
			out = append(out, in)
		case modeInternal:
			if issued[e.app+"\x00"+e.host] {
				continue
			}
			in := pending[e.app]
			if in == nil {
				in = &Info{App: e.app, Mode: modeInternal, Status: StatusPending, Managed: true,
					Issuer: issuerName(m.ca.root)}
				pending[e.app] = in
			}
			host := e.host
			if host == "" {
				host = "(default route: any name or IP address)"
			}
			in.Names = append(in.Names, host)
		}
	}
	for _, in := range pending {
		slices.Sort(in.Names)
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Mode, b.Mode),
			cmp.Compare(strings.Join(a.Names, ","), strings.Join(b.Names, ",")))
	})
	return out
}

// acmeInfo describes the ACME certificate of name.
func (m *Manager) acmeInfo(app, name string, now time.Time) Info {
	in := Info{App: app, Mode: modeAuto, Names: []string{name}, Status: StatusPending, Managed: true}
	var best *x509.Certificate
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && slices.Contains(c.Names, name) && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
			best = c.Leaf
		}
	}
	if best != nil {
		in = certInfo(app, modeAuto, best, now)
		in.Managed = true
	}
	m.statusMu.Lock()
	if st := m.status[name]; st != nil {
		in.LastRenewal = st.lastRenewal
		in.LastError, in.LastErrorAt = st.lastErr, st.errAt
		in.NextAttempt = st.nextAttempt
		if best == nil && st.lastErr != "" && !st.obtaining {
			in.Status = StatusFailed
		}
	}
	m.statusMu.Unlock()
	if in.LastRenewal.IsZero() && best != nil {
		in.LastRenewal = best.NotBefore // obtained before this process started
	}
	return in
}

// certInfo describes a served certificate.
func certInfo(app, mode string, c *x509.Certificate, now time.Time) Info {
	st := StatusValid
	if now.After(c.NotAfter) {
		st = StatusExpired
	}
	return Info{
		App: app, Mode: mode, Names: certNames(c), Status: st,
		Issuer: issuerName(c), Serial: fmt.Sprintf("%x", c.SerialNumber),
		NotBefore: c.NotBefore, NotAfter: c.NotAfter,
	}
}

// issuerName is a readable issuer: "Let's Encrypt R11".
func issuerName(c *x509.Certificate) string {
	cn := c.Issuer.CommonName
	if len(c.Issuer.Organization) > 0 && !strings.Contains(cn, c.Issuer.Organization[0]) {
		return strings.TrimSpace(c.Issuer.Organization[0] + " " + cn)
	}
	if cn == "" {
		return c.Issuer.String()
	}
	return cn
}
