// Package health checks whether an instance is ready: an HTTP GET, a TCP
// connect, or a command. It is the one probe of an instance: the deploy
// engine gates cutover on it (services and accessories alike) and the
// proxy's active checks of routed instances run it too, so an instance
// answers the same request to both: a GET whose Host is the route's host
// (see Host), as the browsers the app serves send it.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrUnhealthy is wrapped by every failed check.
var ErrUnhealthy = errors.New("unhealthy")

// Check runs one check and returns nil when healthy.
type Check func(ctx context.Context) error

var client = &http.Client{
	Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// NewClient returns a client for HTTP checks that run again and again
// (the proxy's): it keeps one idle connection per instance. Redirects are
// not followed (3xx is healthy) and no proxy from the environment is used.
func NewClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Host is the Host header of a route's HTTP checks: the first of its host
// names that is not a wildcard, in canonical form (lower case, no trailing
// dot, an IPv6 address in brackets), so that apps which validate Host
// (Django's ALLOWED_HOSTS) answer them. "" (no such name: a catch-all or
// wildcard-only route, an accessory) sends the instance's address.
func Host(hosts []string) string {
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		switch {
		case h == "", strings.HasPrefix(h, "*."):
		case strings.Contains(h, ":"):
			return "[" + h + "]" // IPv6
		default:
			return h
		}
	}
	return ""
}

// HTTP returns a check that GETs http://addr+path with Host host ("" =
// addr; see Host) and passes on 2xx/3xx. c nil opens a fresh connection
// per check (the deploy gate's); the proxy passes NewClient's.
func HTTP(c *http.Client, addr, host, path string, timeout time.Duration) Check {
	url := "http://" + addr + path
	if c == nil {
		c = client
	}
	return func(parent context.Context) error {
		ctx, cancel := context.WithTimeout(parent, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if host != "" {
			req.Host = host
		}
		req.Header.Set("User-Agent", "moorage-health/1")
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() != nil && parent.Err() == nil {
				return fmt.Errorf("GET %s: %w: no answer within %s (health.timeout)", path, ErrUnhealthy, timeout)
			}
			return fmt.Errorf("GET %s: %w: %v", path, ErrUnhealthy, trimNetErr(err))
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %w: status %d", path, ErrUnhealthy, resp.StatusCode)
		}
		return nil
	}
}

// TCP returns a check that connects to addr.
func TCP(addr string, timeout time.Duration) Check {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				return fmt.Errorf("connect %s: %w: no answer within %s (health.timeout)", addr, ErrUnhealthy, timeout)
			}
			return fmt.Errorf("connect %s: %w: %v", addr, ErrUnhealthy, trimNetErr(err))
		}
		return c.Close()
	}
}

// Command returns a check that runs exec (for example the runtime's Exec in
// the instance) and passes on exit status 0.
func Command(timeout time.Duration, exec func(ctx context.Context) (int, string, error)) Check {
	return func(parent context.Context) error {
		ctx, cancel := context.WithTimeout(parent, timeout)
		defer cancel()
		code, out, err := exec(ctx)
		if err != nil {
			if ctx.Err() != nil && parent.Err() == nil {
				return fmt.Errorf("command: %w: did not finish within %s (health.timeout)", ErrUnhealthy, timeout)
			}
			return fmt.Errorf("command: %w: %v", ErrUnhealthy, err)
		}
		if code != 0 {
			if len(out) > 200 {
				out = out[len(out)-200:]
			}
			return fmt.Errorf("command exited with status %d: %w: %s", code, ErrUnhealthy, out)
		}
		return nil
	}
}

// WaitReady runs check every interval until it passes, ctx ends, or
// deadline (the check's health.start_period) passes; it returns nil on
// success, else the last failure, saying how long it waited and what to
// change if the app only needs longer.
func WaitReady(parent context.Context, check Check, interval, deadline time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	ctx, cancel := context.WithTimeout(parent, deadline)
	defer cancel()
	// Check often at first: most instances are ready within a few hundred
	// milliseconds, and the gate should not add a whole interval.
	wait := 50 * time.Millisecond
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		// A check cut short by the deadline says less than the one before.
		if ctx.Err() == nil || last == nil {
			last = err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if last == nil {
				last = ctx.Err()
			}
			if parent.Err() != nil {
				return fmt.Errorf("not ready: %w", last)
			}
			return fmt.Errorf("not ready within %s (health.start_period; raise it if the app needs longer to start): %w", deadline, last)
		case <-t.C:
		}
		if wait *= 2; wait > interval {
			wait = interval
		}
	}
}

func trimNetErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
