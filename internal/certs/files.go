package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultFileCheckInterval is how often, at most, own certificate files are
// checked for changes (on a handshake that needs them, and by List).
const DefaultFileCheckInterval = 2 * time.Second

// fileCert serves an own certificate and key (tls: {cert, key}) and
// reloads them when they change: on a handshake at most once per interval,
// the two files are stat'ed; a new size, modification time or inode
// reloads them. A reload that fails (a half-written file, a key that no
// longer matches) keeps the previous certificate and is retried at the
// next check; the error shows in List.
type fileCert struct {
	certPath, keyPath string
	hosts             []string // must be covered by the certificate
	interval          time.Duration
	log               *slog.Logger

	cur       atomic.Pointer[loadedFiles]
	nextCheck atomic.Int64 // unix nanoseconds

	mu      sync.Mutex // one check at a time; guards the fields below
	lastErr string
	errAt   time.Time
}

// loadedFiles is one successful load of the files.
type loadedFiles struct {
	cert          *tls.Certificate // Leaf set
	certFI, keyFI os.FileInfo
	loadedAt      time.Time
}

// newFileCert loads the files now; an error wraps ErrBadCertFiles.
func newFileCert(certPath, keyPath string, hosts []string, interval time.Duration, log *slog.Logger) (*fileCert, error) {
	lf, err := loadFiles(certPath, keyPath, hosts, time.Now())
	if err != nil {
		return nil, err
	}
	f := &fileCert{certPath: certPath, keyPath: keyPath, hosts: hosts, interval: interval, log: log}
	f.cur.Store(lf)
	f.nextCheck.Store(time.Now().Add(interval).UnixNano())
	return f, nil
}

// get returns the current certificate, first checking the files when the
// interval has passed.
func (f *fileCert) get() *tls.Certificate {
	now := time.Now().UnixNano()
	if next := f.nextCheck.Load(); now >= next && f.nextCheck.CompareAndSwap(next, now+int64(f.interval)) {
		f.check()
	}
	return f.cur.Load().cert
}

// check reloads the files if they changed since the last load.
func (f *fileCert) check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.cur.Load()
	cfi, err1 := os.Stat(f.certPath)
	kfi, err2 := os.Stat(f.keyPath)
	if err1 == nil && err2 == nil && sameFile(cur.certFI, cfi) && sameFile(cur.keyFI, kfi) {
		return
	}
	lf, err := loadFiles(f.certPath, f.keyPath, f.hosts, time.Now())
	if err != nil {
		if msg := err.Error(); msg != f.lastErr {
			f.log.Warn("own certificate files changed but cannot be loaded; still serving the previous certificate",
				"cert", f.certPath, "key", f.keyPath, "err", err)
			f.lastErr = msg
		}
		f.errAt = time.Now()
		return
	}
	f.cur.Store(lf)
	f.lastErr, f.errAt = "", time.Time{}
	f.log.Info("own certificate reloaded", "cert", f.certPath, "names", certNames(lf.cert.Leaf),
		"not_after", lf.cert.Leaf.NotAfter)
}

// status returns the current load and the last reload error.
func (f *fileCert) status() (*loadedFiles, string, time.Time) {
	f.nextCheck.Store(time.Now().Add(f.interval).UnixNano())
	f.check()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur.Load(), f.lastErr, f.errAt
}

func sameFile(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// loadFiles reads, parses and checks a certificate and key: the key must
// match the certificate, the certificate must cover hosts and not have
// expired.
func loadFiles(certPath, keyPath string, hosts []string, now time.Time) (*loadedFiles, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadCertFiles, fmt.Sprintf(format, args...))
	}
	cfi, err := os.Stat(certPath)
	if err != nil {
		return nil, bad("certificate: %v", err)
	}
	kfi, err := os.Stat(keyPath)
	if err != nil {
		return nil, bad("key: %v", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, bad("certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, bad("key: %v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, bad("%s and %s: %v (the certificate must be PEM, leaf first, and the key PEM, the one of that certificate)", certPath, keyPath, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, bad("%s: %v", certPath, err)
		}
	}
	leaf := pair.Leaf
	if now.After(leaf.NotAfter) {
		return nil, bad("%s expired on %s", certPath, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, h := range hosts {
		probe := h
		if isWildcard(h) {
			probe = "moorage-probe" + h[1:]
		}
		if err := leaf.VerifyHostname(probe); err != nil {
			return nil, bad("%s does not cover host %q (it covers %s)", certPath, h, strings.Join(certNames(leaf), ", "))
		}
	}
	return &loadedFiles{cert: &pair, certFI: cfi, keyFI: kfi, loadedAt: now}, nil
}

// certNames lists the names and addresses a certificate covers.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}
