package certs

import "errors"

var (
	// ErrInvalidSite reports a site that cannot be served as given: a
	// malformed host name, an unknown TLS mode, a wildcard or an IP address
	// with tls: auto, relative certificate paths.
	ErrInvalidSite = errors.New("invalid tls site")
	// ErrHostConflict reports a host (or the default route) that another app
	// already claims, or that one app lists twice with different settings.
	ErrHostConflict = errors.New("host conflict")
	// ErrBadCertFiles reports own certificate files that cannot be read or
	// parsed, whose key does not match the certificate, or whose certificate
	// does not cover the site's hosts.
	ErrBadCertFiles = errors.New("bad certificate files")
	// ErrNoCertificate is returned by GetCertificate when no site covers the
	// name a client asked for, or its certificate is not there yet.
	ErrNoCertificate = errors.New("no certificate")
	// ErrNotManaged is returned by Renew for a name no tls: auto site has.
	ErrNotManaged = errors.New("not an ACME-managed name")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("certificate manager closed")
)
