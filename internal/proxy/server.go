package proxy

import (
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServerOptions tunes the http.Server that HTTPServer returns; zero fields
// take the defaults below.
type ServerOptions struct {
	// ReadHeaderTimeout bounds how long a client may take to send a request's
	// headers (default 10s), from the connection's start or the first byte
	// of a later request, whether the front or net/http reads the head
	// (a hand-off keeps the deadline). It is what defeats slowloris: a
	// connection that trickles its headers is closed, and every connection
	// is served by its own goroutine, so hundreds of them do not delay
	// anyone else.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive client connection idle this long
	// between requests (default 75s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head (request line and header
	// fields); larger ones get a 431 and the connection is closed (default
	// 64 KiB). Server's front enforces it on every head it reads; a head
	// that outgrows the front's 8 KiB buffer under a larger limit, and the
	// requests after a hand-off, are net/http's, which reads up to 4 KiB
	// past the limit before it answers the 431.
	MaxHeaderBytes int
	// CloseIdleAfter, when set, makes Server.Shutdown close idle
	// keep-alive connections only after this long, or once each carried
	// one more request (answered with "Connection: close"), instead of at
	// once: a client reusing a connection just as it is closed sees its
	// request fail (a POST is not retried). 0: at once.
	CloseIdleAfter time.Duration
	// Handler is what the server serves (default: the Proxy itself), for a
	// handler in front of the proxy such as the edge's redirects.
	Handler http.Handler
}

// Defaults of ServerOptions.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 75 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

func (o ServerOptions) withDefaults() ServerOptions {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return o
}

// HTTPServer returns the hardened http.Server to serve p with: header read,
// idle and header size limits set, no whole-request read or write timeout
// (uploads, downloads, SSE and WebSockets may last long; the upstream
// response-header timeout and the drain bound them instead). Serve it on
// the proxy's listener (and set TLSConfig for HTTPS); Shutdown it before
// Close.
func (p *Proxy) HTTPServer(opts ServerOptions) *http.Server {
	opts = opts.withDefaults()
	h := opts.Handler
	if h == nil {
		h = p
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.logger.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				p.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				p.conns.Add(-1)
			}
		},
	}
}
