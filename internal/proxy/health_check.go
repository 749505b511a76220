package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/moorage/moorage/internal/health"
)

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

// check runs the one health probe (package health), the deploy gate's: an
// HTTP GET of the path with the route's Host expecting 2xx or 3xx, or a TCP
// connect when there is no path.
func (c *healthChecker) check(ctx context.Context, addr string, client *http.Client) error {
	if c.cfg.Path == "" {
		return health.TCP(addr, c.cfg.Timeout)(ctx)
	}
	return health.HTTP(client, addr, c.host, c.cfg.Path, c.cfg.Timeout)(ctx)
}
