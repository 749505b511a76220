package loadgen

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// ErrBadResponse reports a response the client could not parse.
var ErrBadResponse = errors.New("bad response")

// client is a minimal HTTP/1.1 keep-alive client over one connection: it
// writes a fixed request and parses just enough of the response (status,
// Content-Length or chunked, Connection: close) to find its end. It costs a
// fraction of net/http's client, so the generator is never the bottleneck of
// the thing it measures.
type client struct {
	addr    string
	tls     *tls.Config // https: a new handshake on every dial (nil: http)
	request []byte
	head    bool
	timeout time.Duration
	// closeEach: every request asks for "Connection: close" and goes on a
	// new connection (with its own TLS handshake over https).
	closeEach bool

	conn net.Conn
	br   *bufio.Reader
}

// newClient prepares a client for requests of method (and body, if not
// nil) to u with the given Host header ("" = the URL's). Over https it
// uses tlsConf (nil: DefaultTLS).
func newClient(u *url.URL, method, host string, body []byte, timeout time.Duration, tlsConf *tls.Config, closeEach bool) (*client, error) {
	port := "80"
	switch u.Scheme {
	case "http":
	case "https":
		port = "443"
		if tlsConf == nil {
			tlsConf = DefaultTLS()
		}
	default:
		return nil, fmt.Errorf("loadgen: only http:// and https:// URLs are supported, not %q", u.Scheme)
	}
	if host == "" {
		host = u.Host
	}
	path := u.RequestURI()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: moorage-loadgen\r\n", method, path, host)
	if body != nil {
		req += fmt.Sprintf("Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", len(body))
	}
	if closeEach {
		req += "Connection: close\r\n"
	}
	req += "\r\n" + string(body)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	c := &client{addr: addr, request: []byte(req), head: method == "HEAD", timeout: timeout, closeEach: closeEach}
	if u.Scheme == "https" {
		c.tls = tlsConf
	}
	return c, nil
}

// DefaultTLS is the client side of https runs unless Config.TLS says
// otherwise: TLS 1.3 only, X25519 key exchange, HTTP/1.1 by ALPN, no
// session resumption (every dial is a full handshake), and the server's
// certificate chain not verified (the handshake's signature still is): the
// generator's work per handshake stays small, and the same for every
// server.
func DefaultTLS() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		NextProtos:         []string{"http/1.1"},
	}
}

// dial connects, and over TLS completes the handshake.
func (c *client) dial() (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil || c.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, c.tls)
	if c.timeout > 0 {
		_ = tc.SetDeadline(time.Now().Add(c.timeout))
	}
	if err := tc.Handshake(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return tc, nil
}

func (c *client) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// do sends the request and reads the whole response; it returns the status.
// Any error closes the connection, and the next do dials again.
func (c *client) do() (int, error) {
	if c.conn == nil {
		conn, err := c.dial()
		if err != nil {
			return 0, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	if c.timeout > 0 {
		_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	}
	if _, err := c.conn.Write(c.request); err != nil {
		c.close()
		return 0, err
	}
	status, keep, err := c.readResponse()
	if err != nil || !keep || c.closeEach {
		c.close()
	}
	return status, err
}

var (
	hContentLength    = []byte("content-length:")
	hTransferEncoding = []byte("transfer-encoding:")
	hConnection       = []byte("connection:")
)

func hasPrefixFold(line, prefix []byte) bool {
	return len(line) >= len(prefix) && bytes.EqualFold(line[:len(prefix)], prefix)
}

func (c *client) readResponse() (status int, keepAlive bool, err error) {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
			return 0, false, fmt.Errorf("%w: status line %q", ErrBadResponse, line)
		}
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil {
			return 0, false, fmt.Errorf("%w: status line %q", ErrBadResponse, line)
		}
		keepAlive = line[7] == '1'
		length, chunked := int64(-1), false
		for {
			line, err := c.br.ReadSlice('\n')
			if err != nil {
				return status, false, err
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(line) == 0 {
				break
			}
			switch {
			case hasPrefixFold(line, hContentLength):
				length, err = strconv.ParseInt(string(bytes.TrimSpace(line[len(hContentLength):])), 10, 64)
				if err != nil {
					return status, false, fmt.Errorf("%w: %q", ErrBadResponse, line)
				}
			case hasPrefixFold(line, hTransferEncoding):
				chunked = bytes.Contains(bytes.ToLower(line), []byte("chunked"))
			case hasPrefixFold(line, hConnection):
				if bytes.Contains(bytes.ToLower(line), []byte("close")) {
					keepAlive = false
				}
			}
		}
		if status >= 100 && status < 200 && status != 101 {
			continue // an interim response; the real one follows
		}
		switch {
		case c.head || status == 204 || status == 304:
		case chunked:
			if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(c.br)); err != nil {
				return status, false, err
			}
			// Trailers, then the blank line.
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return status, false, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					break
				}
			}
		case length >= 0:
			if _, err := c.br.Discard(int(length)); err != nil {
				return status, false, err
			}
		default:
			_, err := io.Copy(io.Discard, c.br)
			return status, false, err
		}
		return status, keepAlive, nil
	}
}
