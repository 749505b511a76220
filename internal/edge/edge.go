// Package edge is the front door policy in front of the proxy: per host, it
// redirects plain HTTP to HTTPS for TLS routes (except ACME HTTP-01
// challenges, which it hands to the certificate manager), redirects a
// route's other hosts to its canonical one, and adds HSTS to HTTPS
// responses. It is an http.Handler wrapping the proxy, serving both the
// HTTP and the HTTPS listener.
//
// Like the proxy, it reads an immutable snapshot behind an atomic pointer:
// one map lookup per request and no allocation for a request it passes
// through; SetApp and RemoveApp replace an app's hosts atomically.
package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/spec"
)

var (
	// ErrInvalidSite reports a site that cannot be served as given (a
	// malformed host, a canonical host that is not one of the hosts).
	ErrInvalidSite = errors.New("invalid site")
	// ErrHostConflict reports a host (or the default route) that another app
	// already claims, or that one app lists twice with different settings.
	ErrHostConflict = errors.New("host conflict")
	// ErrPortClash reports the HTTP and HTTPS listeners on one address.
	ErrPortClash = errors.New("port clash")
	// ErrHTTPSOff reports a site with TLS on a server without HTTPS.
	ErrHTTPSOff = errors.New("https is off")
)

// ChallengePrefix is the path prefix of ACME HTTP-01 challenges.
const ChallengePrefix = "/.well-known/acme-challenge/"

// DefaultHSTS is the Strict-Transport-Security value of routes with hsts:
// one year, this host only (not its subdomains, which may not all have
// HTTPS).
const DefaultHSTS = "max-age=31536000"

// Site is the edge policy of one routed service.
type Site struct {
	// Service and Mode (its tls: mode) name the site in messages.
	Service, Mode string
	// Hosts are exact names, "*.example.com" wildcards or IP addresses.
	// Empty: the default route.
	Hosts []string
	// TLS: plain HTTP requests are redirected to HTTPS.
	TLS bool
	// Canonical, if set, is one of Hosts: requests for the others are
	// redirected to it.
	Canonical string
	// HSTS adds Strict-Transport-Security to HTTPS responses.
	HSTS bool
}

// SitesOf returns the edge sites of sp's routed services.
func SitesOf(sp *spec.Spec) []Site {
	var out []Site
	for _, name := range sp.ServiceNames() {
		svc := sp.Services[name]
		if svc == nil || svc.HTTP == nil {
			continue
		}
		h := svc.HTTP
		out = append(out, Site{
			Service:   name,
			Mode:      h.TLS.Mode,
			Hosts:     slices.Clone(h.Hosts),
			TLS:       h.TLS.Mode != "" && h.TLS.Mode != spec.TLSOff,
			Canonical: h.Canonical,
			HSTS:      h.HSTS,
		})
	}
	return out
}

// Options configures an Edge.
type Options struct {
	// HTTPSPort is the port HTTPS redirects point at; 0 or 443 leave it out
	// of the URL.
	HTTPSPort int
	// Challenge answers an ACME HTTP-01 challenge and reports whether it did
	// (certs.Manager.HandleHTTPChallenge). Challenge requests it does not
	// answer go to the app, never to a redirect.
	Challenge func(http.ResponseWriter, *http.Request) bool
	// HSTS is the Strict-Transport-Security value (default DefaultHSTS).
	HSTS string
	// HTTPSOff: the server has no HTTPS listener. Sites with TLS are then
	// refused by Check (ErrHTTPSOff: plain HTTP would redirect to a port
	// nobody listens on), unless PlainWhenHTTPSOff; SetApp serves them over
	// plain HTTP, without redirects or HSTS (a server restarted with
	// HTTPS off keeps serving the apps it has).
	HTTPSOff bool
	// PlainWhenHTTPSOff lets Check accept sites with TLS when HTTPSOff:
	// `moorage up`, a dev run, serves them over plain HTTP (and says so).
	PlainWhenHTTPSOff bool
	// Logger gets a warning when a site's TLS is ignored (default: none).
	Logger *slog.Logger
}

// Edge is the front door: an http.Handler in front of next (the proxy).
type Edge struct {
	next      http.Handler
	challenge func(http.ResponseWriter, *http.Request) bool
	httpsPort string // "" or ":8443"
	hsts      []string
	httpsOff  bool
	plainOK   bool
	log       *slog.Logger

	table atomic.Pointer[table]

	mu     sync.Mutex // serializes SetApp and RemoveApp; guards apps and warned
	apps   map[string][]*policy
	warned map[string]bool // app and service whose ignored TLS was logged
}

// New returns an Edge with no sites in front of next.
func New(next http.Handler, opts Options) *Edge {
	e := &Edge{next: next, challenge: opts.Challenge, apps: map[string][]*policy{}, warned: map[string]bool{},
		httpsOff: opts.HTTPSOff, plainOK: opts.PlainWhenHTTPSOff, log: opts.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPSPort != 0 && opts.HTTPSPort != 443 {
		e.httpsPort = ":" + strconv.Itoa(opts.HTTPSPort)
	}
	v := opts.HSTS
	if v == "" {
		v = DefaultHSTS
	}
	e.hsts = []string{v}
	e.table.Store(buildTable(nil))
	return e
}

// policy is what the edge does for one configured host.
type policy struct {
	app       string
	host      string // canonical configured host ("" default route, "*.x" wildcard)
	tls       bool   // redirect plain HTTP to HTTPS
	hsts      bool
	canonical string // redirect here (never the host itself)
}

func (p *policy) same(o *policy) bool {
	return p.tls == o.tls && p.hsts == o.hsts && p.canonical == o.canonical
}

// active reports whether the edge does anything for the host.
func (p *policy) active() bool { return p.tls || p.hsts || p.canonical != "" }

// table is an immutable snapshot of every app's policies: every claimed
// host has one, active or not (a host without TLS or canonical still keeps
// the default route's policy off it).
type table struct {
	exact    map[string]*policy
	wildcard map[string]*policy // by suffix: "a.test" for "*.a.test"
	fallback *policy
	idle     bool // no active policy: pass everything through
}

func buildTable(apps map[string][]*policy) *table {
	t := &table{exact: map[string]*policy{}, wildcard: map[string]*policy{}, idle: true}
	for _, ps := range apps {
		for _, p := range ps {
			if p.active() {
				t.idle = false
			}
			switch {
			case p.host == "":
				t.fallback = p
			case strings.HasPrefix(p.host, "*."):
				t.wildcard[p.host[2:]] = p
			default:
				t.exact[p.host] = p
			}
		}
	}
	return t
}

// lookup finds the policy for a canonical request host: the exact host,
// else the wildcard of its parent domain, else the default route.
func (t *table) lookup(host string) *policy {
	if p := t.exact[host]; p != nil {
		return p
	}
	if i := strings.IndexByte(host, '.'); i >= 0 {
		if p := t.wildcard[host[i+1:]]; p != nil {
			return p
		}
	}
	return t.fallback
}

// owner returns the policy that claims a canonical configured host.
func (t *table) owner(host string) *policy {
	switch {
	case host == "":
		return t.fallback
	case strings.HasPrefix(host, "*."):
		return t.wildcard[host[2:]]
	default:
		return t.exact[host]
	}
}

// ServeHTTP applies the host's policy, then hands the request to next.
// ACME HTTP-01 challenge requests are never redirected (neither to HTTPS
// nor to the canonical host): the certificate manager answers those it
// knows, the app the others.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure := r.TLS != nil
	if !secure && strings.HasPrefix(r.URL.Path, ChallengePrefix) {
		if e.challenge == nil || !e.challenge(w, r) {
			e.next.ServeHTTP(w, r)
		}
		return
	}
	t := e.table.Load()
	if t.idle {
		e.next.ServeHTTP(w, r)
		return
	}
	host, port := splitHost(r.Host)
	p := t.lookup(host)
	if p == nil || !p.active() || host == "" {
		e.next.ServeHTTP(w, r)
		return
	}
	switch {
	case !secure && p.tls:
		to := host
		if p.canonical != "" {
			to = p.canonical
		}
		e.redirect(w, r, "https://", to, e.httpsPort, false)
		return
	case p.canonical != "":
		e.redirect(w, r, scheme(secure), p.canonical, port, secure && p.hsts)
		return
	}
	if secure && p.hsts {
		w.Header()["Strict-Transport-Security"] = e.hsts
	}
	e.next.ServeHTTP(w, r)
}

func scheme(secure bool) string {
	if secure {
		return "https://"
	}
	return "http://"
}

// redirect answers 308 (method and body kept) to the same path and query
// on scheme://host+port.
func (e *Edge) redirect(w http.ResponseWriter, r *http.Request, scheme, host, port string, hsts bool) {
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]" // IPv6
	}
	path := r.URL.EscapedPath()
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	loc := scheme + host + port + path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	} else if r.URL.ForceQuery {
		loc += "?"
	}
	h := w.Header()
	h["Location"] = []string{loc}
	h["Content-Length"] = []string{"0"}
	if hsts {
		h["Strict-Transport-Security"] = e.hsts
	}
	w.WriteHeader(http.StatusPermanentRedirect)
}

// splitHost returns a request's Host in its lookup form (no port, no IPv6
// brackets, no trailing dot, lower case) and its ":port" suffix, without
// allocating when the host is already lower case.
func splitHost(h string) (host, port string) {
	if h != "" && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			host, port = h[1:i], h[i+1:]
			if !strings.HasPrefix(port, ":") {
				port = ""
			}
		} else {
			host = h
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		host, port = h[:i], h[i:]
	} else {
		host = h
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	return lower(host), port
}

// lower is strings.ToLower for ASCII host names; it allocates only when h
// has upper-case letters.
func lower(h string) string {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// policies validates sites of app and returns one policy per host. With
// httpsOff, TLS is ignored: no redirect to HTTPS, no HSTS.
func policies(app string, sites []Site, httpsOff bool) ([]*policy, error) {
	if app == "" {
		return nil, fmt.Errorf("%w: empty app name", ErrInvalidSite)
	}
	byHost := map[string]*policy{}
	var out []*policy
	for _, s := range sites {
		canonical := ""
		if s.Canonical != "" {
			c, err := certs.NormalizeHost(s.Canonical)
			if err != nil {
				return nil, fmt.Errorf("%w: canonical: %w", ErrInvalidSite, err)
			}
			if strings.HasPrefix(c, "*.") {
				return nil, fmt.Errorf("%w: canonical %q must be one host name, not a wildcard", ErrInvalidSite, s.Canonical)
			}
			canonical = c
		}
		hosts := make([]string, 0, len(s.Hosts))
		for _, h := range s.Hosts {
			c, err := certs.NormalizeHost(h)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidSite, err)
			}
			hosts = append(hosts, c)
		}
		if canonical != "" && !slices.Contains(hosts, canonical) {
			return nil, fmt.Errorf("%w: canonical %q must be one of the hosts %q", ErrInvalidSite, canonical, hosts)
		}
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			p := &policy{app: app, host: h, tls: s.TLS && !httpsOff, hsts: s.HSTS && s.TLS && !httpsOff}
			if canonical != h {
				p.canonical = canonical
			}
			if prev := byHost[h]; prev != nil {
				if !prev.same(p) {
					return nil, fmt.Errorf("%w: %s of app %q is listed twice with different settings", ErrHostConflict, hostName(h), app)
				}
				continue
			}
			byHost[h] = p
			out = append(out, p)
		}
	}
	return out, nil
}

func hostName(h string) string {
	if h == "" {
		return "the default route (no hosts)"
	}
	return fmt.Sprintf("host %q", h)
}

// conflict returns an error naming the first host of ps another app claims.
func (t *table) conflict(app string, ps []*policy) error {
	for _, p := range ps {
		if o := t.owner(p.host); o != nil && o.app != app {
			if p.host == "" {
				return fmt.Errorf("%w: the default route (no hosts) is already served by app %q: give this app's routes hosts:, or deploy %q with hosts: of its own first", ErrHostConflict, o.app, o.app)
			}
			return fmt.Errorf("%w: host %q is already served by app %q: remove it from the hosts: of %q and deploy that app first, or use another host", ErrHostConflict, p.host, o.app, o.app)
		}
	}
	return nil
}

// Check reports whether app could have sites: valid hosts, canonical
// hosts among them, no host another app claims, and no TLS when the server
// has no HTTPS (unless PlainWhenHTTPSOff). It changes nothing.
func (e *Edge) Check(app string, sites []Site) error {
	if e.httpsOff && !e.plainOK {
		for _, s := range sites {
			if s.TLS {
				return fmt.Errorf("%w: service %q has tls: %s, but this server has HTTPS off (started with --https off), so its plain HTTP would redirect to a port nobody listens on: restart the server with --https :443 (or another address), or set tls: off to serve plain HTTP", ErrHTTPSOff, s.Service, orDefault(s.Mode, "on"))
			}
		}
	}
	ps, err := policies(app, sites, e.httpsOff)
	if err != nil {
		return err
	}
	return e.table.Load().conflict(app, ps)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// SetApp atomically replaces app's sites; on error nothing changes. An
// empty sites is RemoveApp. With HTTPSOff, sites with TLS are accepted
// and served over plain HTTP (and a warning is logged).
func (e *Edge) SetApp(app string, sites []Site) error {
	ps, err := policies(app, sites, e.httpsOff)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.httpsOff {
		for _, s := range sites {
			if k := app + "\x00" + s.Service; s.TLS && !e.warned[k] {
				e.warned[k] = true
				e.log.Warn("HTTPS is off on this server: the route is served over plain HTTP, its tls: is ignored", "app", app, "service", s.Service, "tls", s.Mode)
			}
		}
	}
	if err := e.table.Load().conflict(app, ps); err != nil {
		return err
	}
	if len(ps) == 0 {
		delete(e.apps, app)
	} else {
		e.apps[app] = ps
	}
	e.table.Store(buildTable(e.apps))
	return nil
}

// RemoveApp forgets app's sites.
func (e *Edge) RemoveApp(app string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.apps[app]; !ok {
		return
	}
	delete(e.apps, app)
	e.table.Store(buildTable(e.apps))
}

// CheckListeners reports an error when the HTTP and HTTPS listener
// addresses would take the same port on an overlapping address.
func CheckListeners(httpAddr, httpsAddr string) error {
	if httpAddr == "" || httpsAddr == "" {
		return nil
	}
	h1, p1, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return fmt.Errorf("--http %q: %w", httpAddr, err)
	}
	h2, p2, err := net.SplitHostPort(httpsAddr)
	if err != nil {
		return fmt.Errorf("--https %q: %w", httpsAddr, err)
	}
	if p1 != p2 || p1 == "0" {
		return nil
	}
	any := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || ip != nil && ip.IsUnspecified()
	}
	if any(h1) || any(h2) || strings.EqualFold(h1, h2) || net.ParseIP(h1).Equal(net.ParseIP(h2)) && net.ParseIP(h1) != nil {
		return fmt.Errorf("%w: --http %s and --https %s use the same port %s; give HTTPS its own port (the default is :443)", ErrPortClash, httpAddr, httpsAddr, p1)
	}
	return nil
}
