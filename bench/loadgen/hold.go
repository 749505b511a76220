package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"time"
)

// Hold opens n keep-alive connections, makes one request on each (so each
// is a real, used client connection), and keeps them open until ctx ends.
// ready is called once all are open. It measures a server's memory per idle
// client connection.
// Over https it uses tlsConf (nil: DefaultTLS).
func Hold(ctx context.Context, rawURL, host string, n int, tlsConf *tls.Config, ready func()) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	clients := make([]*client, 0, n)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for i := range n {
		c, err := newClient(u, "GET", host, nil, 10*time.Second, tlsConf, false)
		if err != nil {
			return err
		}
		clients = append(clients, c)
		status, err := c.do()
		if err != nil {
			return fmt.Errorf("loadgen: connection %d: %w", i, err)
		}
		if status != 200 || c.conn == nil {
			return fmt.Errorf("loadgen: connection %d: status %d (kept alive: %v)", i, status, c.conn != nil)
		}
		_ = c.conn.SetDeadline(time.Time{})
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return nil
}
