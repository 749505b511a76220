package proxy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// table is one immutable snapshot of the routing table. The Proxy keeps the
// current one behind an atomic pointer: requests load it without locking, and
// SetApp/RemoveApp build a new one and swap it in, so an app's cutover is one
// atomic step for all of its routes.
type table struct {
	exact    map[string]*hostRoutes // "example.com"
	wildcard map[string]*hostRoutes // "example.com" for the pattern "*.example.com"
	fallback *hostRoutes            // the default route (no hosts), or nil
}

// hostRoutes are the routes of one host, longest path prefix first. A host
// belongs to one app.
type hostRoutes struct {
	app    string
	routes []*route
}

// match returns the route with the longest prefix that covers path.
func (h *hostRoutes) match(path string) *route {
	for _, r := range h.routes {
		if r.matches(path) {
			return r
		}
	}
	return nil
}

// lookup finds the route for a canonical host (see canonicalHost) and a
// request path: the exact host, else the wildcard of its parent domain
// ("a.b.example.com" → "*.b.example.com"), else the default route. The host's
// routes decide alone: a path none of them covers is not found.
func (t *table) lookup(host, path string) *route {
	h := t.exact[host]
	if h == nil {
		if i := strings.IndexByte(host, '.'); i >= 0 {
			h = t.wildcard[host[i+1:]]
		}
	}
	if h == nil {
		h = t.fallback
	}
	if h == nil {
		return nil
	}
	return h.match(path)
}

// owner returns the app that claims a canonical configured host ("" for the
// default route), or "".
func (t *table) owner(host string) string {
	var h *hostRoutes
	switch {
	case host == "":
		h = t.fallback
	case strings.HasPrefix(host, "*."):
		h = t.wildcard[host[2:]]
	default:
		h = t.exact[host]
	}
	if h == nil {
		return ""
	}
	return h.app
}

// buildTable compiles the routes of every app into a new snapshot.
func buildTable(apps map[string][]*route) *table {
	t := &table{exact: map[string]*hostRoutes{}, wildcard: map[string]*hostRoutes{}}
	add := func(m map[string]*hostRoutes, key string, r *route) {
		h := m[key]
		if h == nil {
			h = &hostRoutes{app: r.App}
			m[key] = h
		}
		h.routes = append(h.routes, r)
	}
	for _, routes := range apps {
		for _, r := range routes {
			if len(r.Hosts) == 0 {
				if t.fallback == nil {
					t.fallback = &hostRoutes{app: r.App}
				}
				t.fallback.routes = append(t.fallback.routes, r)
				continue
			}
			for _, host := range r.Hosts {
				if suffix, ok := strings.CutPrefix(host, "*."); ok {
					add(t.wildcard, suffix, r)
				} else {
					add(t.exact, host, r)
				}
			}
		}
	}
	byPrefix := func(h *hostRoutes) {
		slices.SortStableFunc(h.routes, func(a, b *route) int {
			return cmp.Compare(len(b.PathPrefix), len(a.PathPrefix))
		})
	}
	for _, h := range t.exact {
		byPrefix(h)
	}
	for _, h := range t.wildcard {
		byPrefix(h)
	}
	if t.fallback != nil {
		byPrefix(t.fallback)
	}
	return t
}

// checkHosts reports whether app may claim the hosts of routes (already
// normalized) given the current table: no host or default route of another
// app, and no host+prefix listed twice.
func (t *table) checkHosts(app string, routes []Route) error {
	type key struct{ host, prefix string }
	seen := map[key]bool{}
	for _, r := range routes {
		hosts := r.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			name := "host " + strconv.Quote(h)
			if h == "" {
				name = "the default route (no hosts)"
			}
			if other := t.owner(h); other != "" && other != app {
				return &HostTakenError{Host: name, App: other}
			}
			for _, prefix := range append([]string{r.PathPrefix}, r.staticPrefixes()...) {
				k := key{h, prefix}
				if seen[k] {
					return fmt.Errorf("%w: %s with path prefix %q is listed twice for app %q (routes and static directories included)", ErrHostConflict, name, "/"+strings.TrimPrefix(prefix, "/"), app)
				}
				seen[k] = true
			}
		}
	}
	return nil
}

// canonicalHost turns a request's Host into its lookup form without
// allocating when it is already canonical: the port and IPv6 brackets are
// stripped, then a trailing dot, then it is lower-cased.
func canonicalHost(h string) string {
	if h == "" {
		return h
	}
	if h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	return strings.ToLower(h)
}
