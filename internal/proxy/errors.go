package proxy

import (
	"errors"
	"fmt"
)

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

// HostTakenError is an ErrHostConflict with another app: Host is already
// routed to App.
type HostTakenError struct {
	Host, App string
}

func (e *HostTakenError) Error() string {
	return fmt.Sprintf("%v: %s is already routed to app %q", ErrHostConflict, e.Host, e.App)
}

func (e *HostTakenError) Unwrap() error { return ErrHostConflict }
