package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrUnhealthy is the error a failed HTTP health check records.
var ErrUnhealthy = errors.New("unhealthy")

// healthChecker runs a target's active health check every interval in one
// goroutine until stopped.
type healthChecker struct {
	cfg    HealthCheck
	host   string // Host header of HTTP checks ("" = the target address)
	cancel context.CancelFunc
	done   chan struct{}
}

// startHealthChecker starts checking t; ctx is the proxy's, so Close stops
// every checker at once.
func startHealthChecker(ctx context.Context, t *target, cfg HealthCheck, host string, client *http.Client) *healthChecker {
	ctx, cancel := context.WithCancel(ctx)
	c := &healthChecker{cfg: cfg, host: host, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, t, client)
	return c
}

// stop ends the checker and waits for its goroutine.
func (c *healthChecker) stop() {
	c.cancel()
	<-c.done
}

func (c *healthChecker) run(ctx context.Context, t *target, client *http.Client) {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := c.check(ctx, t.addr, client)
		if ctx.Err() != nil {
			return // stopped mid-check: the result means nothing
		}
		t.recordCheck(err, c.cfg.Retries)
		t.pool.closeExpired(time.Now())
	}
}

// check runs one probe: an HTTP GET of the path expecting 2xx or 3xx, or a
// TCP connect when there is no path.
func (c *healthChecker) check(ctx context.Context, addr string, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.cfg.Path == "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.cfg.Path, nil)
	if err != nil {
		return err
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", "moorage-proxy-health")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 399 {
		return fmt.Errorf("%w: GET %s: status %d", ErrUnhealthy, c.cfg.Path, res.StatusCode)
	}
	return nil
}

// newHealthClient returns the client every HTTP check uses: no redirects
// followed (3xx is healthy), no proxy from the environment, one idle
// connection per target.
func newHealthClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
