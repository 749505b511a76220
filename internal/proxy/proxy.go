// Package proxy is the reverse proxy every user request crosses: it routes by
// host and path prefix to an app's web instances, balances round-robin over
// the healthy ones, health-checks them, swaps an app's routes atomically at
// cutover, and drains the instances a cutover left behind.
package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options tunes a Proxy; zero fields take the defaults below.
type Options struct {
	Logger                *slog.Logger
	DialTimeout           time.Duration // connecting to a target (default 3s); a failed dial is retried elsewhere
	ResponseHeaderTimeout time.Duration // waiting for a target's response headers before the 504 (default 60s)
	IdleConnTimeout       time.Duration // keep-alive connections to a target are closed after this (default 90s)
	MaxIdleConnsPerTarget int           // keep-alive connections kept per target (default 64)
	RetryAfter            time.Duration // Retry-After of the 503 page (default 5s)
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
	return o
}

// Proxy is an http.Handler routing requests to the targets of apps' routes.
// Requests read an immutable routing snapshot without locking; SetApp,
// RemoveApp and Drain change it under a mutex.
type Proxy struct {
	opts       Options
	logger     *slog.Logger
	retryAfter string
	buffers    *bufferPool
	health     *http.Client

	table   atomic.Pointer[table]
	changes broadcast    // a route or a target's health changed
	holding atomic.Int64 // requests waiting for a healthy target

	ctx    context.Context // parent of the health checkers
	cancel context.CancelFunc

	mu      sync.Mutex
	apps    map[string][]*route // current routes per app
	targets map[string]*target  // every known target: routed, or unrouted until drained
	closed  bool
}

// New returns a Proxy with no routes.
func New(opts Options) *Proxy {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		opts:       opts,
		logger:     opts.Logger,
		retryAfter: strconv.Itoa(int((opts.RetryAfter + time.Second - 1) / time.Second)),
		buffers:    &bufferPool{},
		health:     newHealthClient(),
		ctx:        ctx,
		cancel:     cancel,
		apps:       map[string][]*route{},
		targets:    map[string]*target{},
	}
	p.table.Store(buildTable(nil))
	return p
}

// Close stops every health checker and waits for them, and closes idle
// connections. Requests still in flight finish.
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
		t.transport.CloseIdleConnections()
	}
	p.health.CloseIdleConnections()
	return nil
}

// attempt is the ResponseWriter a request goes through while it looks for a
// target: the targets' error handler reports a failed dial through it so the
// request can be retried elsewhere. Attempts are pooled.
type attempt struct {
	http.ResponseWriter
	dialErr error
	n       int
	failed  [maxDialRetries]*target
}

// maxDialRetries bounds the targets one request may fail to connect to.
const maxDialRetries = 8

var attempts = sync.Pool{New: func() any { return new(attempt) }}

// Unwrap lets http.ResponseController (Flush, Hijack for upgrades) reach the
// server's ResponseWriter.
func (a *attempt) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// tried reports whether t already failed to connect for this request.
func (a *attempt) tried(t *target) bool {
	for _, f := range a.failed[:a.n] {
		if f == t {
			return true
		}
	}
	return false
}

// ServeHTTP routes r to a healthy target of its route.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, path := canonicalHost(r.Host), r.URL.Path
	rt := p.table.Load().lookup(host, path)
	if rt == nil {
		writePage(w, http.StatusNotFound, pageNotFound, "")
		return
	}
	if rt.MaxBody > 0 {
		if r.ContentLength > rt.MaxBody {
			writePage(w, http.StatusRequestEntityTooLarge, pageTooLarge, "")
			return
		}
		if r.ContentLength < 0 {
			r.Body = http.MaxBytesReader(w, r.Body, rt.MaxBody)
		}
	}

	a := attempts.Get().(*attempt)
	a.ResponseWriter = w
	var (
		hold    *time.Timer     // started when the request first finds no healthy target
		changed <-chan struct{} // armed before re-checking health while holding
	)
	defer func() {
		if hold != nil {
			hold.Stop()
			p.holding.Add(-1)
		}
		*a = attempt{}
		attempts.Put(a)
	}()

	for {
		if t := rt.lb.pick(a); t == nil {
			// Nothing healthy: hold the request until a target comes back or a
			// SetApp changes the route, at most HoldTimeout; then the 503.
			if hold == nil {
				if rt.HoldTimeout <= 0 {
					p.unavailable(w, rt)
					return
				}
				hold = time.NewTimer(rt.HoldTimeout)
				p.holding.Add(1)
			}
			if changed == nil {
				changed = p.changes.wait() // armed; re-check once before waiting on it
			} else {
				select {
				case <-changed:
					changed = nil
				case <-hold.C:
					p.unavailable(w, rt)
					return
				case <-r.Context().Done():
					w.WriteHeader(statusClientClosedRequest)
					return
				}
			}
		} else if t.acquire() {
			t.serve(a, r)
			if a.dialErr == nil {
				return
			}
			// Nothing reached the app: take the target out and try another.
			t.markDown(a.dialErr)
			a.failed[a.n], a.n, a.dialErr = t, a.n+1, nil
			if a.n == maxDialRetries {
				writePage(w, http.StatusBadGateway, pageBadGateway, "")
				return
			}
			changed = nil
		}
		// Else the target left the table since we loaded it: look again.
		if rt = p.table.Load().lookup(host, path); rt == nil {
			writePage(w, http.StatusNotFound, pageNotFound, "")
			return
		}
	}
}

// unavailable answers with the route's 503 page.
func (p *Proxy) unavailable(w http.ResponseWriter, rt *route) {
	writePage(w, http.StatusServiceUnavailable, rt.unavailable, p.retryAfter)
}
