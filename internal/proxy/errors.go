package proxy

import "errors"

var (
	// ErrInvalidRoute reports a route or target that cannot be routed as given
	// (a malformed host or path prefix, a target without an address, ...).
	ErrInvalidRoute = errors.New("invalid route")
	// ErrHostConflict reports a host (or the default route) that another app
	// already claims, or that one app lists twice.
	ErrHostConflict = errors.New("host conflict")
	// ErrTargetConflict reports a target ID that another app already uses.
	ErrTargetConflict = errors.New("target conflict")
	// ErrClosed is returned by SetApp after Close.
	ErrClosed = errors.New("proxy closed")
)
