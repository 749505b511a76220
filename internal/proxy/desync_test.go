//go:build unix

package proxy

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secondResponder answers /second with the request ID it got, so a client
// can tell its own response from anybody else's.
func secondResponder(c net.Conn, r *upstreamRequest) bool {
	_, err := io.WriteString(c, okResponse("second:"+r.req.Header.Get(headerRequestID)))
	return err == nil
}

// expectOwnResponses sends n requests for /second on fresh connections:
// each must get its own answer, never bytes another request left on an
// upstream connection.
func expectOwnResponses(t *testing.T, srv *testServer, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("c2-%d", i)
		res, body, err := rawRoundTrip(t, srv, "GET /second HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: "+id+"\r\n\r\n", "GET")
		if err != nil {
			t.Fatalf("second client %d: %v", i, err)
		}
		if res.StatusCode != 200 || body != "second:"+id {
			t.Fatalf("second client %d got someone else's bytes: %d %q", i, res.StatusCode, body)
		}
	}
}

// TestUpstreamDesync: an app instance that answers one request with more
// (or fewer) bytes than its framing says must never make another client
// read them: the connection is not reused in an unknown state.
func TestUpstreamDesync(t *testing.T) {
	leak := okResponse("LEAKED")
	for _, tc := range []struct {
		name, method, first string
		hangUp              bool // close the connection after the first response
	}{
		{"bytes past Content-Length", "GET", okResponse("first") + leak, false},
		{"body to HEAD", "HEAD", okResponse(leak), false},
		{"chunked body to HEAD", "HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + leak, false},
		{"body to 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n" + leak, false},
		{"body to 304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n" + leak, false},
		{"bytes past the last chunk", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n" + leak, false},
		{"bytes past the trailers", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\nX-T: 1\r\n\r\n" + leak, false},
		{"interim responses, then bytes past the length", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + okResponse("first") + leak, false},
		{"HTTP/1.0 keep-alive with bytes past the length", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nfirst" + leak, false},
		{"chunked and Content-Length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n" + leak, false},
		{"signed Content-Length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nfirst" + leak, false},
		{"conflicting Content-Length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nfirst!" + leak, false},
		{"chunked in HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n" + leak, false},
		{"short body, then hang-up", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst", true},
		{"head cut short", "GET", "HTTP/1.1 200 OK\r\nContent-Le", true},
		{"2xx to CONNECT", "CONNECT", "HTTP/1.1 200 Connection Established\r\n\r\n" + leak, false},
	} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} { // the front, and net/http (1.0 is handed over)
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				p, srv := newTestProxy(t, Options{})
				b := newScriptBackend(t, func(c net.Conn, r *upstreamRequest) bool {
					if r.req.URL.Path == "/first" {
						_, _ = io.WriteString(c, tc.first)
						return !tc.hangUp
					}
					return secondResponder(c, r)
				})
				mustSetApp(t, p, "app", RouteTargets{
					Route:   Route{Hosts: []string{"app.test"}, Health: HealthCheck{Interval: time.Hour}},
					Targets: []Target{{ID: "a1", Addr: b.addr()}},
				})
				res, body, _ := rawRoundTrip(t, srv, tc.method+" /first "+proto+"\r\nHost: app.test\r\n\r\n", tc.method)
				if res != nil && strings.Contains(body, "LEAKED") && tc.method != "HEAD" {
					// The first client may see the junk its own instance
					// sent; it must not be framed as a later response.
					t.Logf("first client: %d %q", res.StatusCode, body)
				}
				expectOwnResponses(t, srv, 3)
			})
		}
	}
}

// TestUpstreamLateBytes: bytes an instance sends on a keep-alive connection
// after a complete response (a second response nobody asked for) are not
// taken for the answer to the next request sent on it, however soon that
// request comes.
func TestUpstreamLateBytes(t *testing.T) {
	p, srv := newTestProxy(t, Options{IdleConnTimeout: time.Minute})
	firstConn := make(chan net.Conn, 1)
	b := newScriptBackend(t, func(c net.Conn, r *upstreamRequest) bool {
		if r.req.URL.Path == "/first" {
			_, _ = io.WriteString(c, okResponse("first"))
			firstConn <- c
			return true
		}
		return secondResponder(c, r)
	})
	mustSetApp(t, p, "app", RouteTargets{
		Route:   Route{Hosts: []string{"app.test"}, Health: HealthCheck{Interval: time.Hour}},
		Targets: []Target{{ID: "a1", Addr: b.addr()}},
	})
	if res, body, err := rawRoundTrip(t, srv, "GET /first HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET"); err != nil || res.StatusCode != 200 || body != "first" {
		t.Fatalf("first: %v %v %q", res, err, body)
	}
	c := <-firstConn
	if _, err := io.WriteString(c, okResponse("LEAKED")); err != nil {
		t.Fatal(err)
	}
	// Wait until the unsolicited bytes sit in the idle pooled connection.
	tg := p.lookupTarget("a1")
	waitFor(t, "the unsolicited response to reach the pooled connection", func() bool {
		tg.pool.mu.Lock()
		defer tg.pool.mu.Unlock()
		for _, uc := range tg.pool.idle {
			if pendingBytes(t, uc.conn) {
				return true
			}
		}
		return false
	})
	expectOwnResponses(t, srv, 3)
}

// pendingBytes reports whether bytes wait to be read on c.
func pendingBytes(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var perr error
	var buf [1]byte
	if err := rc.Control(func(fd uintptr) {
		n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	return perr == nil && n > 0
}
