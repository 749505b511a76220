package proxy

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults applied to zero fields of HealthCheck and Route.
const (
	DefaultHealthInterval = time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthRetries  = 3
	DefaultDrainTimeout   = 30 * time.Second
)

// HealthCheck is the active health check the proxy runs against every routed
// target of a route.
type HealthCheck struct {
	Path     string        // HTTP GET path expecting 2xx/3xx; "" means a TCP connect check
	Interval time.Duration // default 1s
	Timeout  time.Duration // default 2s
	Retries  int           // consecutive failures before a target leaves rotation (default 3)
}

// Route sends the requests for some hosts (and a path prefix) to the targets
// of one app's service.
type Route struct {
	App          string
	Service      string
	Hosts        []string      // exact "example.com" or wildcard "*.example.com"; empty = the default route
	PathPrefix   string        // "" or "/" = everything
	Health       HealthCheck   // active health check of the route's targets
	DrainTimeout time.Duration // how long Drain waits for in-flight requests (default 30s)
	HoldTimeout  time.Duration // requests wait this long for a healthy target before the 503 (0 = do not wait)
	MaxBody      int64         // request body limit in bytes, 0 = unlimited; over → 413 before the upstream sees the body
	// Static serves directories read-only at URL path prefixes of the
	// route's hosts: prefix ("/media/") → absolute directory on the host.
	// Files only (no listings), with range requests, ETag and
	// Last-Modified; paths cannot leave the directory, not even through
	// symlinks, and dot files are hidden.
	Static map[string]string
}

// Target is one instance serving a route.
type Target struct {
	ID   string // instance id, unique across apps
	Addr string // "127.0.0.1:port"
}

// RouteTargets is a route with the targets it balances over.
type RouteTargets struct {
	Route   Route
	Targets []Target
}

// withDefaults fills zero fields.
func (h HealthCheck) withDefaults() HealthCheck {
	if h.Interval <= 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.Retries <= 0 {
		h.Retries = DefaultHealthRetries
	}
	return h
}

// normalize validates r for app and returns it with canonical hosts (lower
// case, no trailing dot, wildcard kept as "*.suffix"), a canonical path prefix
// ("" for everything, no trailing slash) and defaults filled in.
func (r Route) normalize(app string) (Route, error) {
	if r.App == "" {
		r.App = app
	}
	if r.App != app {
		return r, fmt.Errorf("%w: route of app %q given for app %q", ErrInvalidRoute, r.App, app)
	}
	if r.Service == "" {
		r.Service = "web"
	}
	hosts := make([]string, 0, len(r.Hosts))
	for _, h := range r.Hosts {
		c, err := canonicalRouteHost(h)
		if err != nil {
			return r, err
		}
		hosts = append(hosts, c)
	}
	r.Hosts = hosts
	prefix, err := canonicalPrefix(r.PathPrefix)
	if err != nil {
		return r, err
	}
	r.PathPrefix = prefix
	if r.Health.Path != "" && !strings.HasPrefix(r.Health.Path, "/") {
		return r, fmt.Errorf("%w: health check path %q must start with /", ErrInvalidRoute, r.Health.Path)
	}
	r.Health = r.Health.withDefaults()
	if r.DrainTimeout <= 0 {
		r.DrainTimeout = DefaultDrainTimeout
	}
	if r.HoldTimeout < 0 {
		r.HoldTimeout = 0
	}
	if r.MaxBody < 0 {
		return r, fmt.Errorf("%w: max body %d must not be negative", ErrInvalidRoute, r.MaxBody)
	}
	if len(r.Static) > 0 {
		static := make(map[string]string, len(r.Static))
		for prefix, dir := range r.Static {
			p, err := canonicalPrefix(prefix)
			if err != nil {
				return r, fmt.Errorf("static %q: %w", prefix, err)
			}
			if p == "" {
				return r, fmt.Errorf("%w: static path prefix %q would hide the whole app; use a prefix such as /media/", ErrInvalidRoute, prefix)
			}
			if !filepath.IsAbs(dir) {
				return r, fmt.Errorf("%w: static %q: directory %q is not an absolute path", ErrInvalidRoute, prefix, dir)
			}
			if _, dup := static[p]; dup {
				return r, fmt.Errorf("%w: static path prefix %q is listed twice", ErrHostConflict, prefix)
			}
			static[p] = filepath.Clean(dir)
		}
		r.Static = static
	}
	return r, nil
}

// staticPrefixes returns r's static prefixes, sorted.
func (r Route) staticPrefixes() []string {
	return slices.SortedFunc(maps.Keys(r.Static), func(a, b string) int { return cmp.Compare(a, b) })
}

// canonicalRouteHost validates a configured host name and returns its lookup
// form.
func canonicalRouteHost(h string) (string, error) {
	c := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if strings.HasPrefix(c, "[") && strings.HasSuffix(c, "]") {
		c = c[1 : len(c)-1]
	}
	if c == "" {
		return "", fmt.Errorf("%w: empty host name", ErrInvalidRoute)
	}
	if ip := net.ParseIP(c); ip != nil {
		return c, nil
	}
	name := c
	if rest, ok := strings.CutPrefix(c, "*."); ok {
		name = rest
	}
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("%w: host %q is not a valid host name", ErrInvalidRoute, h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%w: host %q is not a valid host name", ErrInvalidRoute, h)
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			switch {
			case b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-', b == '_':
			case b == ':':
				return "", fmt.Errorf("%w: host %q must not include a port", ErrInvalidRoute, h)
			case b == '*':
				return "", fmt.Errorf("%w: host %q: a wildcard is only allowed as the first label (\"*.example.com\")", ErrInvalidRoute, h)
			default:
				return "", fmt.Errorf("%w: host %q is not a valid host name", ErrInvalidRoute, h)
			}
		}
	}
	return c, nil
}

// canonicalPrefix validates a path prefix; "" and "/" both mean everything and
// come back as "".
func canonicalPrefix(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: path prefix %q must start with /", ErrInvalidRoute, p)
	}
	if strings.ContainsAny(p, "?#*") {
		return "", fmt.Errorf("%w: path prefix %q must be a plain path", ErrInvalidRoute, p)
	}
	return strings.TrimRight(p, "/"), nil
}

// route is a compiled Route: its config, the balancer over its targets and
// its pre-rendered 503 page; or one static directory of a Route (staticDir
// set), routed like a path prefix of its own. Routes are immutable once
// built (the balancer's counter aside); a SetApp builds new ones.
type route struct {
	Route
	app         *appState // shared by every route of the app: maintenance, metrics
	lb          loadBalancer
	unavailable []byte // the 503 page naming app/service
	staticDir   string // a static route: the directory served at PathPrefix
}

func newRoute(cfg Route, targets []*target) *route {
	return &route{
		Route:       cfg,
		lb:          loadBalancer{targets: targets},
		unavailable: unavailablePage(cfg.App, cfg.Service),
	}
}

// staticRoutes returns a route for each static directory of r.
func (r *route) staticRoutes() []*route {
	var out []*route
	for _, prefix := range r.staticPrefixes() {
		cfg := r.Route
		cfg.PathPrefix = prefix
		cfg.Static = nil
		out = append(out, &route{Route: cfg, app: r.app, staticDir: r.Static[prefix]})
	}
	return out
}

// matches reports whether path falls under the route's prefix: "/api" matches
// "/api" and "/api/x" but not "/apix".
func (r *route) matches(path string) bool {
	p := r.PathPrefix
	if p == "" {
		return true
	}
	if len(path) < len(p) || path[:len(p)] != p {
		return false
	}
	return len(path) == len(p) || path[len(p)] == '/'
}
