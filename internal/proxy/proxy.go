// Package proxy is the reverse proxy every user request crosses: it routes by
// host and path prefix to an app's web instances, balances round-robin over
// the healthy ones, health-checks them (actively, and passively on refused
// connections), retries safely, holds requests while a route has no healthy
// instance, swaps an app's routes atomically at cutover, drains the
// instances a cutover left behind, serves static directories and
// maintenance pages, and logs and counts every request.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorage/moorage/internal/health"
)

// Options tunes a Proxy; zero fields take the defaults below.
type Options struct {
	Logger                *slog.Logger
	DialTimeout           time.Duration // connecting to a target (default 3s); a failed dial is retried elsewhere
	ResponseHeaderTimeout time.Duration // waiting for a target's response headers before the 504 (default 60s)
	IdleConnTimeout       time.Duration // keep-alive connections to a target are closed after this (default 90s)
	MaxIdleConnsPerTarget int           // keep-alive connections kept per target (default 64)
	RetryAfter            time.Duration // Retry-After of the 503 pages (default 5s)
	// AccessLog, when set, receives one JSON line per request (see
	// accessLog for the fields). Nil: no access log.
	AccessLog io.Writer
	// BodyBufferDir is where request bodies of unknown length (chunked) to
	// a route with a max_body spill beyond 64 KiB while they are buffered
	// (default os.TempDir()). The files are unlinked as soon as they are
	// created.
	BodyBufferDir string
	// BodyBufferBudget caps the bytes of all bodies spilled to
	// BodyBufferDir at once (default 1 GiB): past it, a request whose
	// body would spill gets a 503, so many slow uploads cannot fill the
	// disk.
	BodyBufferBudget int64
	// OnRoutes, when set, is called after every change of an app's routes
	// (SetApp, RemoveApp), outside the proxy's lock, with the app's name:
	// the server persists the route table (Routes) from it.
	OnRoutes func(app string)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 60 * time.Second
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = 90 * time.Second
	}
	if o.MaxIdleConnsPerTarget <= 0 {
		o.MaxIdleConnsPerTarget = 64
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Second
	}
	if o.BodyBufferBudget <= 0 {
		o.BodyBufferBudget = 1 << 30
	}
	return o
}

// Proxy is an http.Handler routing requests to the targets of apps' routes.
// Requests read an immutable routing snapshot without locking; SetApp,
// RemoveApp and Drain change it under a mutex.
type Proxy struct {
	opts       Options
	logger     *slog.Logger
	retryAfter string
	health     *http.Client
	ids        *requestIDs
	accessLog  *accessLog

	table    atomic.Pointer[table]
	changes  broadcast    // a route or a target's health changed
	holding  atomic.Int64 // requests waiting for a healthy target
	spooled  atomic.Int64 // bytes of request bodies spilled to BodyBufferDir
	conns    atomic.Int64 // open client connections (servers from HTTPServer)
	unrouted appState     // metrics of requests no route matched

	ctx    context.Context // parent of the health checkers
	cancel context.CancelFunc

	mu        sync.Mutex
	apps      map[string][]*route       // current routes per app (static ones included)
	appStates map[string]*appState      // maintenance and metrics per app, kept across SetApp calls
	targets   map[string]*target        // every known target: routed, or unrouted until drained
	given     map[string][]RouteTargets // the routes SetApp was last given, per app (Routes)
	closed    bool
}

// New returns a Proxy with no routes.
func New(opts Options) *Proxy {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		opts:       opts,
		logger:     opts.Logger,
		retryAfter: strconv.Itoa(int((opts.RetryAfter + time.Second - 1) / time.Second)),
		health:     health.NewClient(),
		ids:        newRequestIDs(),
		ctx:        ctx,
		cancel:     cancel,
		apps:       map[string][]*route{},
		appStates:  map[string]*appState{},
		targets:    map[string]*target{},
		given:      map[string][]RouteTargets{},
	}
	if opts.AccessLog != nil {
		p.accessLog = &accessLog{w: opts.AccessLog}
	}
	p.table.Store(buildTable(nil))
	return p
}

// Close stops every health checker and waits for them, closes idle
// connections and upgraded ones (WebSockets). Requests still in flight
// finish.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.cancel()
	for _, t := range p.targets {
		t.stopChecks()
		t.closeTunnels()
		t.closeIdleConnections(true)
	}
	p.health.CloseIdleConnections()
	return nil
}

// ServeHTTP routes r to a healthy target of its route.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a := getAttempt(w)
	a.start = start
	st := &p.unrouted
	defer func() {
		// Also when a handler aborts with a panic (http.ErrAbortHandler).
		status := a.status
		if status == 0 {
			status = statusClientClosedRequest
		}
		d := time.Since(start)
		st.metrics.observe(status, d)
		if p.accessLog != nil {
			p.logAccess(a, r, st, status, start, d)
		}
		putAttempt(a)
	}()

	if id := r.Header.Get(headerRequestID); validRequestID(id) {
		a.reqID = id
	} else {
		a.reqID = p.ids.new()
	}
	host, path := canonicalHost(r.Host), r.URL.Path
	rt := p.table.Load().lookup(host, path)
	if rt == nil {
		p.page(a, http.StatusNotFound, pageNotFound, "")
		return
	}
	st = rt.app
	if m := st.maintenance.Load(); m != nil && (path != rt.Health.Path || rt.staticDir != "") {
		p.page(a, http.StatusServiceUnavailable, m.page, p.retryAfter)
		return
	}
	if rt.staticDir != "" {
		serveStatic(a, r, rt)
		return
	}
	if rt.MaxBody > 0 {
		if r.ContentLength > rt.MaxBody {
			p.page(a, http.StatusRequestEntityTooLarge, pageTooLarge, "")
			return
		}
		if r.ContentLength < 0 && r.Header["Upgrade"] == nil {
			// No declared length: read the body whole (up to the limit)
			// before choosing a target, so the app never sees a request
			// over it, not even its first bytes.
			body, err := bufferBodyUpTo(r, rt.MaxBody, spool{dir: p.opts.BodyBufferDir, used: &p.spooled, budget: p.opts.BodyBufferBudget})
			if err != nil {
				p.bodyFailed(a, r, err)
				return
			}
			defer body.close()
		} else if r.ContentLength < 0 {
			// An upgrade's body is not buffered (it may be the start of a
			// stream), but it is capped all the same: an Upgrade header
			// without "Connection: upgrade" is a plain request.
			r.Body = http.MaxBytesReader(a, r.Body, rt.MaxBody)
		}
	}
	p.forward(a, r, rt, host, path)
}

// bodyFailed answers a request whose body of unknown length could not be
// buffered: 413 over the limit, 400 when the client did not send it whole,
// 500 when the proxy could not store it.
func (p *Proxy) bodyFailed(a *attempt, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		p.page(a, http.StatusRequestEntityTooLarge, pageTooLarge, "")
	case r.Context().Err() != nil:
		// The client went away: nobody to answer (logged as 499).
	case errors.Is(err, errBodyRead):
		p.page(a, http.StatusBadRequest, pageBadBody, "")
	case errors.Is(err, errBodySpoolFull):
		p.logger.Warn("request body refused: the bodies being buffered use the whole budget",
			"budget", p.opts.BodyBufferBudget, "method", r.Method, "path", r.URL.Path)
		p.page(a, http.StatusServiceUnavailable, pageBodyBusy, p.retryAfter)
	default:
		p.logger.Error("could not buffer a request body: free space on the disk of the body buffer directory, or check its permissions",
			"dir", p.opts.BodyBufferDir, "method", r.Method, "path", r.URL.Path, "err", err)
		p.page(a, http.StatusInternalServerError, pageBodyNotStored, "")
	}
}

// forward sends r to a healthy target of rt: round-robin, holding while none
// is healthy (up to HoldTimeout), retrying on another target when a dial
// fails, and — for idempotent requests whose body can be replayed — when
// the request failed after it was sent.
func (p *Proxy) forward(a *attempt, r *http.Request, rt *route, host, path string) {
	fast := fastPath(r)
	idempotent := isIdempotent(r)
	replay := fast
	if !fast && idempotent && r.Header["Upgrade"] == nil {
		replay = bufferBody(r, rt.MaxBody)
	}
	if !fast {
		// The slow path forwards the request's own headers.
		r.Header[headerRequestID] = []string{a.reqID}
	}
	var (
		hold    *time.Timer     // started when the request first finds no healthy target
		changed <-chan struct{} // armed before re-checking health while holding
		sent    tryResult       // the last failure after sending, if any
		gone    <-chan struct{} // closed when the client of a held front request goes away
		unwatch func()          // ends the watch behind gone
	)
	defer func() {
		if unwatch != nil {
			unwatch()
		}
		if hold != nil {
			hold.Stop()
			p.holding.Add(-1)
		}
	}()

	for {
		t := rt.lb.pick(a)
		if t == nil {
			// Nothing healthy (or every healthy target already failed this
			// idempotent request): hold the request until a target comes back
			// or a SetApp changes the route — a rollback swapping back to the
			// previous release's instances, say — at most HoldTimeout; then the
			// 503, or the 502 of the last failure.
			if hold == nil {
				if rt.HoldTimeout <= 0 {
					if sent != tryDone {
						p.upstreamFailed(a, r, sent)
						return
					}
					p.page(a, http.StatusServiceUnavailable, rt.unavailable, p.retryAfter)
					return
				}
				hold = time.NewTimer(rt.HoldTimeout)
				p.holding.Add(1)
			}
			if unwatch == nil {
				gone, unwatch = watchClient(a.w)
				if !fast && r.GetBody == nil && r.Header["Upgrade"] == nil {
					// net/http notices a client leaving only once the body
					// was read: read a small one now (the request goes once
					// all the same).
					bufferBody(r, rt.MaxBody)
				}
			}
			if changed == nil {
				changed = p.changes.wait() // armed; re-check once before waiting on it
			} else {
				select {
				case <-changed:
					changed = nil
				case <-hold.C:
					if sent != tryDone {
						p.upstreamFailed(a, r, sent)
						return
					}
					p.page(a, http.StatusServiceUnavailable, rt.unavailable, p.retryAfter)
					return
				case <-r.Context().Done():
					return
				case <-gone:
					return // logged as 499
				}
			}
		} else if t.acquire() {
			if unwatch != nil {
				unwatch() // the front's connection is the request's again
				gone, unwatch = nil, nil
			}
			if a.n > 0 {
				rt.app.metrics.retries.Add(1)
				if !fast {
					rewindBody(r) // when buffered
				}
			}
			a.upstream = t.id
			a.now = a.start
			if hold != nil || a.n > 0 {
				a.now = time.Now()
			}
			switch res := t.serve(a, r, fast, idempotent); res {
			case tryDone:
				return
			case tryDialFailed:
				// Nothing reached the app: take the target out and try another.
				t.markDown(a.err)
				a.fail(t)
			case tryTimeout:
				p.upstreamFailed(a, r, res) // the app may still be working on it
				return
			case trySendFailed:
				if !idempotent || !replay {
					p.upstreamFailed(a, r, res)
					return
				}
				t.logger.Warn("request failed after it was sent; retrying an idempotent request on another instance",
					"method", r.Method, "path", r.URL.Path, "err", a.err)
				sent = res
				a.fail(t)
			}
			if a.n == maxTries {
				p.upstreamFailed(a, r, trySendFailed)
				return
			}
			changed = nil
		}
		// Else the target left the table since we loaded it: look again.
		if rt = p.table.Load().lookup(host, path); rt == nil {
			p.page(a, http.StatusNotFound, pageNotFound, "")
			return
		}
	}
}

// clientWatcher is a ResponseWriter that can tell when its client goes
// away (the front's, whose requests carry no such context).
type clientWatcher interface {
	watchClient() (gone <-chan struct{}, stop func())
}

// watchClient watches for w's client going away, through wrapping
// writers (Unwrap); nil and nothing to stop when w cannot tell (a net/http
// request's context tells instead).
func watchClient(w http.ResponseWriter) (<-chan struct{}, func()) {
	for {
		switch x := w.(type) {
		case clientWatcher:
			return x.watchClient()
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil, func() {}
		}
	}
}

// upstreamFailed answers a request no target could serve: 504 when the
// upstream did not answer in time, 502 otherwise.
func (p *Proxy) upstreamFailed(a *attempt, r *http.Request, res tryResult) {
	if r.Context().Err() != nil {
		return // nobody is listening; logged as 499
	}
	switch {
	case res == tryTimeout:
		p.logger.Warn("upstream timed out", "target", a.upstream, "method", r.Method, "path", r.URL.Path, "err", a.err)
		p.page(a, http.StatusGatewayTimeout, pageGatewayTimeout, "")
	default:
		p.logger.Warn("upstream failed", "target", a.upstream, "method", r.Method, "path", r.URL.Path, "err", a.err)
		p.page(a, http.StatusBadGateway, pageBadGateway, "")
	}
}

// page writes one of the proxy's own pages, with the request ID. (A failed
// try leaves nothing in the header: the fast path parses a response head
// aside and copies it only once it is whole, the slow path only copies a
// response it got.) Headers a wrapping handler set, like HSTS, stay.
func (p *Proxy) page(a *attempt, status int, page []byte, retryAfter string) {
	h := a.w.Header()
	if a.reqID != "" {
		h[headerRequestID] = []string{a.reqID}
	}
	writePage(a, status, page, retryAfter)
}

// logAccess writes r's access log line.
func (p *Proxy) logAccess(a *attempt, r *http.Request, st *appState, status int, start time.Time, d time.Duration) {
	remote := r.RemoteAddr
	if h, _, err := net.SplitHostPort(remote); err == nil {
		remote = h
	}
	p.accessLog.write(&accessEntry{
		start: start, duration: d, app: st.name, method: r.Method, host: r.Host, path: r.URL.Path,
		upstream: a.upstream, reqID: a.reqID, remote: remote, proto: r.Proto, status: status, bytes: a.bytes,
	})
}
