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

	mu     sync.RWMutex
	leaves map[string]*leaf // by cache key
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
		leaves: map[string]*leaf{},
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

// get returns the leaf cached under key, issuing it (again) when it is
// missing or due: names and ips are its subject alternative names.
func (ca *internalCA) get(key, app, host string, names []string, ips []net.IP) (*tls.Certificate, error) {
	now := time.Now()
	ca.mu.RLock()
	l := ca.leaves[key]
	ca.mu.RUnlock()
	if l != nil && now.Before(l.renewAt) {
		return l.cert, nil
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if l := ca.leaves[key]; l != nil && now.Before(l.renewAt) {
		return l.cert, nil // issued while we waited
	}
	cert, err := ca.issue(now, names, ips)
	if err != nil {
		return nil, err
	}
	if len(ca.leaves) >= maxInternalLeaves {
		ca.evictLocked(now)
	}
	lifetime := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore) - clockSkew
	ca.leaves[key] = &leaf{cert: cert, renewAt: now.Add(lifetime * 2 / 3), app: app, host: host}
	return cert, nil
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
