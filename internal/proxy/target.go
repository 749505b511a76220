package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// target is one instance the proxy sends requests to. It owns its
// connections (the fast path's pool, and a keep-alive Transport behind a
// ReverseProxy for requests with a body and upgrades) that survive SetApp
// calls for as long as the target ID stays routed, its health state, its
// in-flight counter and its upgraded connections.
type target struct {
	id, addr     string
	app, service string
	logger       *slog.Logger
	changes      *broadcast // notified when the health state flips

	dialer                *net.Dialer
	responseHeaderTimeout time.Duration
	pool                  connPool
	transport             *http.Transport
	proxy                 *httputil.ReverseProxy

	healthy   atomic.Bool   // in rotation
	healthGen atomic.Uint32 // counts returns to health
	routed    atomic.Bool   // part of the current routing table
	forgotten atomic.Bool   // drained and dropped; close connections once idle
	inflight  atomic.Int64  // requests (and upgraded connections) being served
	waiters   atomic.Int32  // Drain calls waiting for inflight to reach 0

	mu        sync.Mutex
	idle      chan struct{} // closed (and replaced) when inflight reaches 0 while waited on
	failures  int           // consecutive failed checks
	lastErr   string
	lastCheck time.Time
	tunnels   map[*tunnel]struct{} // upgraded connections (WebSockets)

	// Guarded by Proxy.mu.
	drainTimeout time.Duration
	checker      *healthChecker
}

// tunnel is an upgraded connection through a target; cancel closes it.
type tunnel struct{ cancel context.CancelFunc }

// dialError marks a failure to connect to a target: nothing reached the app,
// so the request can go to another target.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func newTarget(p *Proxy, app, service string, tg Target) *target {
	t := &target{
		id:                    tg.ID,
		addr:                  tg.Addr,
		app:                   app,
		service:               service,
		logger:                p.logger.With("app", app, "service", service, "target", tg.ID, "addr", tg.Addr),
		changes:               &p.changes,
		idle:                  make(chan struct{}),
		dialer:                &net.Dialer{Timeout: p.opts.DialTimeout, KeepAlive: 30 * time.Second},
		responseHeaderTimeout: p.opts.ResponseHeaderTimeout,
		pool:                  connPool{max: p.opts.MaxIdleConnsPerTarget, timeout: p.opts.IdleConnTimeout},
		tunnels:               map[*tunnel]struct{}{},
	}
	t.healthy.Store(true)
	t.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := t.dialer.DialContext(ctx, network, addr)
			if err != nil && ctx.Err() == nil {
				return nil, &dialError{err: err}
			}
			return c, err
		},
		MaxIdleConnsPerHost:   p.opts.MaxIdleConnsPerTarget,
		IdleConnTimeout:       p.opts.IdleConnTimeout,
		ResponseHeaderTimeout: p.opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	t.proxy = &httputil.ReverseProxy{
		Rewrite:        t.rewrite,
		Transport:      t.transport,
		BufferPool:     bodyBuffers,
		ErrorHandler:   t.handleError,
		ModifyResponse: t.modifyResponse,
		ErrorLog:       slog.NewLogLogger(t.logger.Handler(), slog.LevelWarn),
	}
	return t
}

// rewrite points the outbound request of the slow path at the target,
// keeps the client's Host and query verbatim, and sets X-Forwarded-For
// (appended to the client's), -Proto and -Host, as writeRequestHead does
// for the fast path (fields mimicking them dropped too).
func (t *target) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.addr
	pr.Out.Host = pr.In.Host
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
	// ReverseProxy sends "Te: trailers" on when the client asked for
	// trailers; TE is hop-by-hop, and the fast path drops it: so here.
	delete(pr.Out.Header, "Te")
	for k := range pr.Out.Header {
		if mimicsProxyHeader(k) {
			delete(pr.Out.Header, k)
		}
	}
}

// modifyResponse returns the request ID to the client and notes a protocol
// switch (whose 101 never goes through the ResponseWriter).
func (t *target) modifyResponse(res *http.Response) error {
	if id := res.Request.Header[headerRequestID]; len(id) > 0 {
		res.Header[headerRequestID] = id
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		if a, ok := res.Request.Context().Value(attemptKey{}).(*attempt); ok {
			a.status = http.StatusSwitchingProtocols
		}
	}
	return nil
}

// attemptKey carries an upgrade's attempt in its request context.
type attemptKey struct{}

// handleError records why the slow path could not answer; the proxy then
// retries or writes the error page. It is only called before anything was
// written to the client (or on a failed protocol switch, when nothing more
// can be written).
func (t *target) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if a, ok := w.(*attempt); ok {
		a.err = err
		return
	}
	writePage(w, http.StatusBadGateway, pageBadGateway, "")
}

// serveSlow proxies r with the ReverseProxy: requests with a body, and
// upgrades, whose connection Drain closes at its deadline.
func (t *target) serveSlow(a *attempt, r *http.Request) tryResult {
	if r.Header["Upgrade"] != nil {
		ctx, cancel := context.WithCancel(context.WithValue(r.Context(), attemptKey{}, a))
		tun := &tunnel{cancel: cancel}
		t.mu.Lock()
		t.tunnels[tun] = struct{}{}
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			delete(t.tunnels, tun)
			t.mu.Unlock()
			cancel()
		}()
		r = r.WithContext(ctx)
	}
	t.proxy.ServeHTTP(a, r)
	if a.err == nil || a.status != 0 {
		return tryDone
	}
	if r.Context().Err() != nil {
		return tryDone
	}
	var de *dialError
	var ne net.Error
	switch {
	case errors.As(a.err, &de):
		return tryDialFailed
	case errors.Is(a.err, context.DeadlineExceeded) || errors.As(a.err, &ne) && ne.Timeout():
		return tryTimeout
	default:
		return trySendFailed
	}
}

// closeTunnels closes the target's upgraded connections.
func (t *target) closeTunnels() int {
	t.mu.Lock()
	n := len(t.tunnels)
	for tun := range t.tunnels {
		tun.cancel()
	}
	t.mu.Unlock()
	return n
}

// statusClientClosedRequest is the conventional status for a client that
// went away before the answer.
const statusClientClosedRequest = 499

// acquire counts a request in flight. It fails (and counts nothing) when the
// target has left the routing table meanwhile: together with SetApp clearing
// routed after the new table is stored, this guarantees that once a Drain saw
// no request in flight, no request can reach the target any more.
func (t *target) acquire() bool {
	t.inflight.Add(1)
	if t.routed.Load() {
		return true
	}
	t.release()
	return false
}

// release ends a request counted by acquire.
func (t *target) release() {
	if t.inflight.Add(-1) != 0 {
		return
	}
	if t.waiters.Load() > 0 {
		t.mu.Lock()
		close(t.idle)
		t.idle = make(chan struct{})
		t.mu.Unlock()
	}
	if t.forgotten.Load() {
		t.closeIdleConnections(true)
	}
}

// closeIdleConnections closes both paths' idle connections; forever for a
// forgotten target.
func (t *target) closeIdleConnections(forever bool) {
	t.pool.closeIdle(forever)
	t.transport.CloseIdleConnections()
}

// serve proxies one request (counted by acquire) over the fast or the slow
// path.
func (t *target) serve(a *attempt, r *http.Request, fast, idempotent bool) tryResult {
	defer t.release()
	if fast {
		return t.roundTrip(a, r, idempotent)
	}
	return t.serveSlow(a, r)
}

// waitIdle waits until no request is in flight, the timer fires or ctx ends;
// it reports whether the target became idle.
func (t *target) waitIdle(ctx context.Context, timeout <-chan time.Time) bool {
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	for {
		t.mu.Lock()
		idle := t.idle
		t.mu.Unlock()
		if t.inflight.Load() <= 0 {
			return true
		}
		select {
		case <-idle:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// recordCheck applies an active check result: one success brings the target
// back, retries consecutive failures take it out.
func (t *target) recordCheck(err error, retries int) {
	t.mu.Lock()
	t.lastCheck = time.Now()
	var up, down bool
	if err == nil {
		t.failures = 0
		t.lastErr = ""
		up = !t.healthy.Load()
		if up {
			t.healthGen.Add(1)
			t.healthy.Store(true)
		}
	} else {
		t.failures++
		t.lastErr = err.Error()
		if t.failures >= retries {
			down = t.healthy.Swap(false)
		}
	}
	failures := t.failures
	t.mu.Unlock()
	switch {
	case up:
		t.logger.Info("target healthy")
		t.changes.notify()
	case down:
		t.logger.Warn("target unhealthy", "failures", failures, "err", err)
		t.changes.notify()
	}
}

// markDown takes the target out of rotation at once (passive health check: a
// request could not connect); the active check brings it back.
func (t *target) markDown(err error) {
	t.mu.Lock()
	t.failures++
	t.lastErr = err.Error()
	down := t.healthy.Swap(false)
	t.mu.Unlock()
	if down {
		t.logger.Warn("target unhealthy", "err", err)
		t.changes.notify()
	}
}

// status reports the target's state.
func (t *target) status() TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TargetStatus{
		ID:                  t.id,
		Addr:                t.addr,
		App:                 t.app,
		Service:             t.service,
		Routed:              t.routed.Load(),
		Healthy:             t.healthy.Load(),
		InFlight:            int(max(t.inflight.Load(), 0)),
		ConsecutiveFailures: t.failures,
		LastError:           t.lastErr,
		LastCheck:           t.lastCheck,
	}
}
