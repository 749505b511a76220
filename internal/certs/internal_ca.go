package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorage/moorage/internal/fsutil"
)

// Internal CA defaults.
const (
	// DefaultInternalLifetime is the lifetime of the leaf certificates the
	// internal CA issues; they are reissued, during a handshake, once two
	// thirds of it have passed.
	DefaultInternalLifetime = 7 * 24 * time.Hour
	// internalRootLifetime is the root's lifetime.
	internalRootLifetime = 20 * 365 * 24 * time.Hour
	// maxInternalLeaves bounds the leaves kept in memory (a default route
	// with tls: internal answers any name a client asks for).
	maxInternalLeaves = 4096
	// clockSkew backdates NotBefore, for clients whose clocks lag.
	clockSkew = 5 * time.Minute
	// newNameBurst and newNameEvery bound how fast the default route (which
	// answers any name a client sends) gets leaves for names it has none
	// for: newNameBurst at once, then one per newNameEvery. Configured
	// hosts and IP addresses are not limited.
	newNameBurst = 32
	newNameEvery = 2 * time.Second
)

// Files of the internal CA, under <data-dir>/certs/internal.
const (
	internalDir     = "internal"
	internalRootCrt = "root.crt"
	internalRootKey = "root.key"
)

// internalCA is moorage's own certificate authority: an ECDSA P-256 root
// created once per data dir that signs short-lived leaf certificates on
// demand, for IP addresses and names no public CA would certify.
type internalCA struct {
	root     *x509.Certificate
	key      crypto.Signer
	rootPEM  []byte
	lifetime time.Duration

	mu       sync.RWMutex
	leaves   map[string]*leaf    // by cache key
	inflight map[string]*signing // leaves being signed, by cache key
	newNames tokenBucket         // limits leaves for names the default route has none for

	signed atomic.Int64 // leaves signed, for tests
}

// signing is a leaf being signed: handshakes that need the same leaf wait
// for it instead of signing their own.
type signing struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// leafRequest says which leaf a handshake needs.
type leafRequest struct {
	key   string // cache key
	app   string
	host  string // the configured host it serves ("" for the default route)
	names []string
	ips   []net.IP
	// limited: a name the default route answers without having been
	// configured; new ones are rate-limited.
	limited bool
}

// leaf is an issued leaf certificate.
type leaf struct {
	cert    *tls.Certificate // Leaf set
	renewAt time.Time
	app     string
	host    string // the configured host it serves ("" for the default route)
}

// loadOrCreateCA loads the internal CA from dir, creating it on first use.
// A root certificate without its key is an error: the root may be trusted
// by clients already, so it is never replaced silently.
func loadOrCreateCA(dir string, lifetime time.Duration) (*internalCA, error) {
	crtPath, keyPath := filepath.Join(dir, internalRootCrt), filepath.Join(dir, internalRootKey)
	crtPEM, crtErr := os.ReadFile(crtPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case crtErr == nil && keyErr == nil:
	case errors.Is(crtErr, fs.ErrNotExist):
		// Never created, or interrupted before the certificate was written:
		// nobody can trust a root that was never written out. Create one.
		var err error
		if crtPEM, keyPEM, err = createRoot(); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("internal ca: %w", err)
		}
		if err := fsutil.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("internal ca: %w", err)
		}
		if err := fsutil.WriteFileAtomic(crtPath, crtPEM, 0o600); err != nil {
			return nil, fmt.Errorf("internal ca: %w", err)
		}
	case crtErr != nil:
		return nil, fmt.Errorf("internal ca: %w", crtErr)
	default:
		return nil, fmt.Errorf("internal ca: %s exists but its key cannot be read (%w); restore the key, or remove %s to create a new root (clients then need to trust the new one)", crtPath, keyErr, dir)
	}
	pair, err := tls.X509KeyPair(crtPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("internal ca: %s and %s: %w", crtPath, keyPath, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || pair.Leaf == nil || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("internal ca: %s is not a CA certificate with a signing key", crtPath)
	}
	if lifetime <= 0 {
		lifetime = DefaultInternalLifetime
	}
	return &internalCA{
		root: pair.Leaf, key: signer, rootPEM: crtPEM, lifetime: lifetime,
		leaves: map[string]*leaf{}, inflight: map[string]*signing{},
		newNames: tokenBucket{burst: newNameBurst, every: newNameEvery},
	}, nil
}

// createRoot makes a new root certificate and key, PEM-encoded.
func createRoot() (crtPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("internal ca: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         "moorage internal root CA " + now.UTC().Format("2006-01-02"),
			Organization:       []string{"moorage"},
			OrganizationalUnit: []string{host},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(internalRootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("internal ca: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("internal ca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// get returns the leaf cached under r.key, issuing it (again) when it is
// missing or due. Signing happens outside the lock, once per key however
// many handshakes need it at the same time; while a due leaf is being
// reissued, the others are served the current one. New leaves for names
// the default route answers without their being configured are
// rate-limited.
func (ca *internalCA) get(r leafRequest) (*tls.Certificate, error) {
	now := time.Now()
	ca.mu.RLock()
	l := ca.leaves[r.key]
	ca.mu.RUnlock()
	if l != nil && now.Before(l.renewAt) {
		return l.cert, nil
	}
	ca.mu.Lock()
	l = ca.leaves[r.key]
	if l != nil && now.Before(l.renewAt) {
		ca.mu.Unlock()
		return l.cert, nil // issued while we waited
	}
	if s := ca.inflight[r.key]; s != nil {
		ca.mu.Unlock()
		if l != nil && now.Before(l.cert.Leaf.NotAfter) {
			return l.cert, nil // due, still valid: serve it while it is reissued
		}
		<-s.done
		return s.cert, s.err
	}
	if l == nil && r.limited && !ca.newNames.take(now) {
		ca.mu.Unlock()
		return nil, fmt.Errorf("%w for %q: too many new names for the default route at once; retry in a few seconds (list the names in hosts: to have them served without limit)", ErrNoCertificate, r.names)
	}
	s := &signing{done: make(chan struct{})}
	ca.inflight[r.key] = s
	ca.mu.Unlock()

	s.cert, s.err = ca.issue(now, r.names, r.ips)

	ca.mu.Lock()
	delete(ca.inflight, r.key)
	if s.err == nil {
		if _, ok := ca.leaves[r.key]; !ok && len(ca.leaves) >= maxInternalLeaves {
			ca.evictLocked(now)
		}
		lifetime := s.cert.Leaf.NotAfter.Sub(s.cert.Leaf.NotBefore) - clockSkew
		ca.leaves[r.key] = &leaf{cert: s.cert, renewAt: now.Add(lifetime * 2 / 3), app: r.app, host: r.host}
	}
	ca.mu.Unlock()
	close(s.done)
	return s.cert, s.err
}

// tokenBucket allows burst events at once, then one per every.
type tokenBucket struct {
	burst  int
	every  time.Duration
	tokens float64
	last   time.Time
}

// take reports whether an event may happen now, and counts it if so.
func (b *tokenBucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = float64(b.burst), now
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(b.burst), b.tokens+float64(d)/float64(b.every))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evictLocked makes room for a leaf: the expired ones go, else one at
// random (map order); an evicted leaf is issued again when next needed.
func (ca *internalCA) evictLocked(now time.Time) {
	for k, l := range ca.leaves {
		if now.After(l.cert.Leaf.NotAfter) {
			delete(ca.leaves, k)
		}
	}
	for k := range ca.leaves {
		if len(ca.leaves) < maxInternalLeaves {
			return
		}
		delete(ca.leaves, k)
	}
}

// issue signs a new leaf for names and ips, with a fresh key.
func (ca *internalCA) issue(now time.Time, names []string, ips []net.IP) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("internal ca: %w", err)
	}
	notAfter := now.Add(ca.lifetime)
	if notAfter.After(ca.root.NotAfter) {
		notAfter = ca.root.NotAfter
	}
	cn := ""
	if len(names) > 0 {
		cn = names[0]
	} else if len(ips) > 0 {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("internal ca: sign a certificate for %v %v: %w", names, ips, err)
	}
	ca.signed.Add(1)
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("internal ca: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: parsed}, nil
}

// prune forgets the leaves of hosts no internal site serves any more.
func (ca *internalCA) prune(keep func(app, host string) bool) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for k, l := range ca.leaves {
		if !keep(l.app, l.host) {
			delete(ca.leaves, k)
		}
	}
}

// snapshot returns the cached leaves.
func (ca *internalCA) snapshot() []*leaf {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	out := make([]*leaf, 0, len(ca.leaves))
	for _, l := range ca.leaves {
		out = append(out, l)
	}
	return out
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
