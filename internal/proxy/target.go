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

// target is one instance the proxy sends requests to. It owns a
// ReverseProxy and a keep-alive Transport that survive SetApp calls for as
// long as the target ID stays routed, its health state, and its in-flight
// counter.
type target struct {
	id, addr     string
	app, service string
	logger       *slog.Logger
	changes      *broadcast // notified when the health state flips

	transport *http.Transport
	proxy     *httputil.ReverseProxy

	healthy   atomic.Bool  // in rotation
	routed    atomic.Bool  // part of the current routing table
	forgotten atomic.Bool  // drained and dropped; close connections once idle
	inflight  atomic.Int64 // requests (and upgraded connections) being served
	waiters   atomic.Int32 // Drain calls waiting for inflight to reach 0

	mu        sync.Mutex
	idle      chan struct{} // closed (and replaced) when inflight reaches 0 while waited on
	failures  int           // consecutive failed checks
	lastErr   string
	lastCheck time.Time

	// Guarded by Proxy.mu.
	drainTimeout time.Duration
	checker      *healthChecker
}

// dialError marks a failure to connect to a target: nothing reached the app,
// so the request can go to another target.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func newTarget(p *Proxy, app, service string, tg Target) *target {
	t := &target{
		id:      tg.ID,
		addr:    tg.Addr,
		app:     app,
		service: service,
		logger:  p.logger.With("app", app, "service", service, "target", tg.ID, "addr", tg.Addr),
		changes: &p.changes,
		idle:    make(chan struct{}),
	}
	t.healthy.Store(true)
	dialer := &net.Dialer{Timeout: p.opts.DialTimeout, KeepAlive: 30 * time.Second}
	t.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
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
		Rewrite:      t.rewrite,
		Transport:    t.transport,
		BufferPool:   p.buffers,
		ErrorHandler: t.handleError,
		ErrorLog:     slog.NewLogLogger(t.logger.Handler(), slog.LevelWarn),
	}
	return t
}

// rewrite points the outbound request at the target, keeps the client's Host
// and query verbatim, and sets X-Forwarded-For (appended to the client's),
// -Proto and -Host.
func (t *target) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.addr
	pr.Out.Host = pr.In.Host
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
}

// handleError answers a request the target could not serve. A failed dial is
// handed back to the attempt for a retry elsewhere; everything else gets its
// error page.
func (t *target) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		w.WriteHeader(statusClientClosedRequest) // nobody is listening; for the logs
		return
	}
	var de *dialError
	if a, ok := w.(*attempt); ok && errors.As(err, &de) {
		a.dialErr = de
		return
	}
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		writePage(w, http.StatusRequestEntityTooLarge, pageTooLarge, "")
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		t.logger.Warn("upstream timed out", "method", r.Method, "path", r.URL.Path, "err", err)
		writePage(w, http.StatusGatewayTimeout, pageGatewayTimeout, "")
	default:
		t.logger.Warn("upstream failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writePage(w, http.StatusBadGateway, pageBadGateway, "")
	}
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
		t.transport.CloseIdleConnections()
	}
}

// serve proxies one request; the in-flight count covers upgraded connections
// too, since ReverseProxy returns only once they close.
func (t *target) serve(a *attempt, r *http.Request) {
	defer t.release()
	t.proxy.ServeHTTP(a, r)
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
		up = !t.healthy.Swap(true)
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
