package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestForwardedHeadersOnEveryPath sends one request's header fields over
// every way through the proxy (the front and its own upstream client;
// net/http and the same client; net/http and ReverseProxy; TLS) and checks
// that the app receives the same fields from each: hop-by-hop ones
// (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authorization and those Connection
// lists) dropped, the client's Forwarded and look-alikes of the proxy's own
// fields (X_Forwarded_For) dropped, X-Forwarded-For appended to, -Proto
// and -Host set, the client's request ID kept.
func TestForwardedHeadersOnEveryPath(t *testing.T) {
	p := New(Options{Logger: testLogger(t)})
	t.Cleanup(func() { p.Close() })
	b := newScriptBackend(t, func(c net.Conn, r *upstreamRequest) bool {
		_, err := io.WriteString(c, okResponse("ok"))
		return err == nil
	})
	mustSetApp(t, p, "app", RouteTargets{
		Route:   Route{Hosts: []string{"app.test"}, Health: HealthCheck{Interval: time.Hour}},
		Targets: []Target{{ID: "a1", Addr: b.addr()}},
	})
	var mu sync.Mutex
	servedBy := map[string]bool{} // case → served by the front
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, front := w.(*frontResponse)
		mu.Lock()
		servedBy[r.URL.Query().Get("case")] = front
		mu.Unlock()
		p.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewServer(ServerOptions{Handler: wrap})
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTLS(tlsLn, testServerTLS(t))

	common := "Host: app.test\r\n" +
		"User-Agent: ua\r\n" +
		"X-App: kept\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\n" +
		"x-forwarded-for: 198.51.100.1\r\n" +
		"X-Forwarded-Proto: gopher\r\n" +
		"X-Forwarded-Host: evil.test\r\n" +
		"Forwarded: for=6.6.6.6;proto=https;host=evil.test\r\n" +
		"X_Forwarded_For: 6.6.6.6\r\n" +
		"X-Forwarded_Proto: https\r\n" +
		"x_request_id: spoofed\r\n" +
		"X-Request-Id: my-id-1\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Trailer: X-T\r\n" +
		"Proxy-Authorization: Basic eA==\r\n"
	hop := "Connection: keep-alive, X-Custom\r\nX-Custom: dropped\r\nTE: trailers\r\n"
	cases := []struct {
		name, req string
		tls       bool
		front     bool
	}{
		{"front", "GET /?case=front HTTP/1.1\r\n" + common + "Connection: keep-alive\r\n\r\n", false, true},
		{"net/http, fast upstream", "GET /?case=nethttp-fast HTTP/1.1\r\n" + common + hop + "\r\n", false, false},
		{"net/http, ReverseProxy", "POST /?case=nethttp-slow HTTP/1.1\r\n" + common + hop + "Content-Length: 2\r\n\r\nhi", false, false},
		{"upgrade without Connection: upgrade", "GET /?case=upgrade HTTP/1.1\r\n" + common + "Upgrade: websocket\r\n\r\n", false, false},
		{"chunked body", "PUT /?case=chunked HTTP/1.1\r\n" + common + hop + "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", false, false},
		{"TLS, front", "GET /?case=tls-front HTTP/1.1\r\n" + common + "Connection: keep-alive\r\n\r\n", true, true},
		{"TLS, net/http, fast upstream", "GET /?case=tls-fast HTTP/1.1\r\n" + common + hop + "\r\n", true, false},
		{"TLS, ReverseProxy", "POST /?case=tls-slow HTTP/1.1\r\n" + common + hop + "Content-Length: 2\r\n\r\nhi", true, false},
	}
	var first http.Header
	for _, tc := range cases {
		var c net.Conn
		if tc.tls {
			c, err = tls.Dial("tcp", tlsLn.Addr().String(), testClientTLS(t, "http/1.1"))
		} else {
			c, err = net.Dial("tcp", ln.Addr().String())
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res.Body.Close()
		c.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.name, res.StatusCode)
		}
		reqs := b.requests()
		up := reqs[len(reqs)-1]
		if up.err != nil || up.bodyErr != nil {
			t.Fatalf("%s: the app got a malformed request: %v %v\n%q", tc.name, up.err, up.bodyErr, up.head)
		}
		q := up.req.URL.Query().Get("case")
		mu.Lock()
		front := servedBy[q]
		mu.Unlock()
		if front != tc.front {
			t.Fatalf("%s: served by the front: %v, want %v", tc.name, front, tc.front)
		}
		got := up.req.Header.Clone()
		delete(got, "Content-Length")
		proto := "http"
		if tc.tls {
			proto = "https"
		}
		want := http.Header{
			"User-Agent":        {"ua"},
			"X-App":             {"kept"},
			"X-Forwarded-For":   {"203.0.113.9, 198.51.100.1, 127.0.0.1"},
			"X-Forwarded-Proto": {proto},
			"X-Forwarded-Host":  {"app.test"},
			"X-Request-Id":      {"my-id-1"},
		}
		if !headersEqual(got, want) {
			t.Errorf("%s: the app got\n%q\nwant\n%q\nhead: %q", tc.name, got, want, up.head)
		}
		if strings.Contains(strings.ToLower(string(up.head)), "connection") {
			t.Errorf("%s: a Connection field reached the app: %q", tc.name, up.head)
		}
		delete(got, "X-Forwarded-Proto")
		if first == nil {
			first = got
		} else if !headersEqual(got, first) {
			t.Errorf("%s: the app got %q, the front's way %q", tc.name, got, first)
		}
	}
}
