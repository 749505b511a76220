package certs

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/moorage/moorage/internal/spec"
)

// Site is the TLS configuration of one routed service: its hosts and where
// their certificate comes from.
type Site struct {
	// Service names the routed service in messages (optional).
	Service string
	// Hosts are exact names, "*.example.com" wildcards or IP addresses.
	// Empty: the default route (any host no other app claims, and the
	// server's own IP addresses).
	Hosts []string
	// Mode is spec.TLSAuto (ACME), spec.TLSInternal (moorage's own CA) or
	// spec.TLSFiles (Cert and Key). spec.TLSOff or "": no TLS; the site
	// still claims its hosts, so that no other site's certificate (the
	// default route's) is served for them.
	Mode string
	// Cert and Key are the absolute paths of the PEM certificate (chain)
	// and private key files of spec.TLSFiles.
	Cert, Key string
}

// SitesOf returns the sites of sp's routed services, with TLS or without.
func SitesOf(sp *spec.Spec) []Site {
	var out []Site
	for _, name := range sp.ServiceNames() {
		svc := sp.Services[name]
		if svc == nil || svc.HTTP == nil {
			continue
		}
		h := svc.HTTP
		out = append(out, Site{Service: name, Hosts: slices.Clone(h.Hosts), Mode: h.TLS.Mode, Cert: h.TLS.Cert, Key: h.TLS.Key})
	}
	return out
}

// HasTLS reports whether any of sites has TLS.
func HasTLS(sites []Site) bool {
	for _, s := range sites {
		if s.Mode != "" && s.Mode != spec.TLSOff {
			return true
		}
	}
	return false
}

// site is a validated Site of an app, with canonical hosts.
type site struct {
	app       string
	mode      string   // modeOff for a site without TLS
	hosts     []string // canonical; empty = the default route
	cert, key string
}

// same reports whether s and o get their certificates the same way.
func (s site) same(o site) bool {
	return s.mode == o.mode && s.cert == o.cert && s.key == o.key
}

// NormalizeHost validates a configured host and returns its canonical form:
// lower case, no trailing dot, an IP address in its standard form (IPv6
// without brackets), a wildcard kept as "*.example.com". Errors wrap
// ErrInvalidSite.
func NormalizeHost(h string) (string, error) {
	c := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if strings.HasPrefix(c, "[") && strings.HasSuffix(c, "]") {
		c = c[1 : len(c)-1]
	}
	if c == "" {
		return "", fmt.Errorf("%w: empty host name", ErrInvalidSite)
	}
	if a, err := netip.ParseAddr(c); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("%w: host %q: an IP address must not have a zone", ErrInvalidSite, h)
		}
		return a.Unmap().String(), nil
	}
	name := c
	if rest, ok := strings.CutPrefix(c, "*."); ok {
		name = rest
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: host %q is not a valid host name: %s", ErrInvalidSite, h, why)
	}
	if strings.Contains(name, "://") {
		return "", bad("write the name alone, not a URL")
	}
	if len(name) > 253 {
		return "", bad("longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", bad("empty label or label over 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", bad("a label must not start or end with '-'")
		}
		for i := 0; i < len(l); i++ {
			switch b := l[i]; {
			case b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-', b == '_':
			case b == ':':
				return "", bad("no port here")
			case b == '*':
				return "", bad("a wildcard is only allowed as the whole first label (*.example.com)")
			default:
				return "", bad(fmt.Sprintf("character %q is not allowed", b))
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", bad("the last label must not be all digits (a malformed IP address?)")
	}
	return c, nil
}

func isWildcard(h string) bool { return strings.HasPrefix(h, "*.") }

func isIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// hostName names a canonical host in messages.
func hostName(h string) string {
	if h == "" {
		return "the default route (no hosts)"
	}
	return fmt.Sprintf("host %q", h)
}

// acmePolicy is what validate needs to know about the ACME setup.
type acmePolicy struct {
	// off says why tls: auto cannot work on this server ("" when it can).
	off string
	// publicCA is the public CA every issuer is ("" when some issuer is
	// not a public CA): names no public CA certifies are refused.
	publicCA string
}

// validate checks sites of app on their own (not against other apps) and
// returns them normalized; sites without TLS keep their hosts (mode
// modeOff).
func validate(app string, sites []Site, ap acmePolicy) ([]site, error) {
	if app == "" {
		return nil, fmt.Errorf("%w: empty app name", ErrInvalidSite)
	}
	var out []site
	seen := map[string]site{}
	for _, s := range sites {
		mode := s.Mode
		switch mode {
		case "", spec.TLSOff:
			mode = modeOff
		case spec.TLSAuto, spec.TLSInternal, spec.TLSFiles:
		default:
			return nil, fmt.Errorf("%w: tls mode %q: use auto, internal or files", ErrInvalidSite, s.Mode)
		}
		ns := site{app: app, mode: mode}
		for _, h := range s.Hosts {
			c, err := NormalizeHost(h)
			if err != nil {
				return nil, err
			}
			if mode == spec.TLSAuto {
				switch {
				case isWildcard(c):
					return nil, fmt.Errorf("%w: tls: auto cannot get a certificate for the wildcard %q: wildcards need the DNS challenge, which moorage does not do; use tls: {cert: FILE, key: FILE}", ErrInvalidSite, c)
				case isIP(c):
					return nil, fmt.Errorf("%w: tls: auto cannot get a certificate for the IP address %q; use tls: internal", ErrInvalidSite, c)
				case ap.publicCA != "" && !QualifiesForPublicCert(c):
					return nil, fmt.Errorf("%w: tls: auto cannot get a certificate for %q: %s only certifies public domain names (not localhost, single-label names, or names under .local, .internal, .lan, .test and other private or reserved suffixes); use tls: internal for it", ErrInvalidSite, c, ap.publicCA)
				}
			}
			ns.hosts = append(ns.hosts, c)
		}
		switch mode {
		case spec.TLSAuto:
			if len(ns.hosts) == 0 {
				return nil, fmt.Errorf("%w: tls: auto needs hosts: certificates are issued for host names (add hosts: [example.com], or use tls: internal)", ErrInvalidSite)
			}
			if ap.off != "" {
				return nil, fmt.Errorf("%w: tls: auto for %s: %s", ErrInvalidSite, hostName(ns.hosts[0]), ap.off)
			}
		case spec.TLSFiles:
			if s.Cert == "" || s.Key == "" {
				return nil, fmt.Errorf("%w: tls: {cert, key} needs both files", ErrInvalidSite)
			}
			if !filepath.IsAbs(s.Cert) || !filepath.IsAbs(s.Key) {
				return nil, fmt.Errorf("%w: tls: cert %q and key %q must be absolute paths on the server", ErrInvalidSite, s.Cert, s.Key)
			}
			ns.cert, ns.key = filepath.Clean(s.Cert), filepath.Clean(s.Key)
		}
		hosts := ns.hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			if prev, ok := seen[h]; ok && !prev.same(ns) {
				return nil, fmt.Errorf("%w: %s of app %q is listed twice with different tls settings (%s and %s); give both routes the same tls", ErrHostConflict, hostName(h), app, prev.mode, ns.mode)
			}
			seen[h] = ns
		}
		out = append(out, ns)
	}
	return out, nil
}

// privateSuffixes are top-level names no public CA certifies: reserved
// (RFC 2606, 6761, 6762, 8375) or never delegated and used on private
// networks.
var privateSuffixes = []string{"test", "example", "invalid", "localhost", "local", "internal", "arpa", "onion", "lan", "home", "corp", "localdomain"}

// QualifiesForPublicCert reports whether a public CA (Let's Encrypt,
// ZeroSSL) could certify the canonical host name: not an IP address, at
// least two labels, not localhost, not under a private or reserved suffix.
func QualifiesForPublicCert(name string) bool {
	if isIP(name) || !strings.Contains(name, ".") || !certmagic.SubjectQualifiesForPublicCert(name) {
		return false
	}
	tld := name[strings.LastIndexByte(name, '.')+1:]
	return !slices.Contains(privateSuffixes, tld)
}
