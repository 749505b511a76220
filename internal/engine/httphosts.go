package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/spec"
)

// ErrHostClaimed reports a host (or the default route) that another app
// claims: it routes it, or an operation of it that routes it is running.
// It is the proxy's host conflict, which the proxy reports for the former.
var ErrHostClaimed = proxy.ErrHostConflict

// httpHostClaims makes host claims server-wide and atomic. Deploy locks are per
// app, so two apps could otherwise both check a host as free and both go
// on; the second would only fail at its cutover, after starting its
// instances. An operation claims the hosts of its target and of the
// release a failure goes back to, under one mutex, before it changes
// anything, and holds them until it ends: by then the proxy routes what it
// left active.
type httpHostClaims struct {
	mu      sync.Mutex
	running map[string]map[string]bool // app → hosts its running operation claims
}

// claimHTTPHosts claims the hosts of the routed services of specs (nil ones are
// skipped) for app: none may be routed to another app by the proxy, or
// claimed by another app's running operation, and the target (the first
// spec) must pass the front checks (TLS, front door). The returned function
// releases the claim.
func (e *Engine) claimHTTPHosts(app string, specs ...*spec.Spec) (func(), error) {
	c := &e.httpHosts
	c.mu.Lock()
	defer c.mu.Unlock()
	mine := map[string]bool{}
	for i, sp := range specs {
		if sp == nil {
			continue
		}
		if err := e.checkHTTPHosts(app, sp, i == 0); err != nil {
			return nil, err
		}
		for _, h := range httpHostsOf(sp) {
			mine[h] = true
		}
	}
	for _, other := range slices.Sorted(maps.Keys(c.running)) {
		if other == app {
			continue
		}
		for _, h := range slices.Sorted(maps.Keys(mine)) {
			if c.running[other][h] {
				return nil, fmt.Errorf("%w: %s is claimed by app %q, whose deploy is running; %s", ErrHostClaimed, hostName(h), other, hostFix(app, other))
			}
		}
	}
	if c.running == nil {
		c.running = map[string]map[string]bool{}
	}
	c.running[app] = mine
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.running, app)
	}, nil
}

// checkHTTPHosts checks, changing nothing, that sp's routes are valid and that
// no other app routes one of its hosts; front also checks its TLS sites and
// front-door policy.
func (e *Engine) checkHTTPHosts(app string, sp *spec.Spec, front bool) error {
	if err := e.proxy.CheckHosts(app, routesOfSpec(app, sp)); err != nil {
		var taken *proxy.HostTakenError
		if errors.As(err, &taken) && taken.App != app {
			return fmt.Errorf("%w; %s", err, hostFix(app, taken.App))
		}
		return err
	}
	if front {
		return e.checkFront(app, sp)
	}
	return nil
}

// httpHostsOf returns the hosts the routed services of sp claim ("" for the
// default route). The spec only accepts them in their canonical form
// (lower case, no trailing dot, IPv6 without brackets), which is how the
// proxy compares them.
func httpHostsOf(sp *spec.Spec) []string {
	var out []string
	for _, name := range sp.ServiceNames() {
		svc := sp.Services[name]
		if !svc.Routed() {
			continue
		}
		if len(svc.HTTP.Hosts) == 0 {
			out = append(out, "")
		}
		out = append(out, svc.HTTP.Hosts...)
	}
	return out
}

func hostName(h string) string {
	if h == "" {
		return "the default route (a web service without http.hosts)"
	}
	return fmt.Sprintf("host %q", h)
}

func hostFix(app, other string) string {
	return fmt.Sprintf("a host belongs to one app: remove it from the http.hosts of %s, or remove it from %s's and deploy %s first", app, other, other)
}
