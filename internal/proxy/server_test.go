package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRequest writes req on a new connection to srv and returns the
// connection and a reader of it.
func rawConn(t *testing.T, srv *testServer) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

// waitClosed waits until the server closes c (a read returns EOF or an
// error other than our own deadline).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 1024)
	for {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(buf)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server did not close the connection", what)
		}
	}
}

// TestSlowloris holds hundreds of connections that trickle a request head:
// normal requests keep succeeding meanwhile, and the server closes the slow
// connections once ReadHeaderTimeout passed.
func TestSlowloris(t *testing.T) {
	p, srv := newTestProxyServer(t, Options{}, ServerOptions{ReadHeaderTimeout: 500 * time.Millisecond})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{Hosts: []string{"shop.test"}}, Targets: targets(b)})

	const slow = 300
	conns := make([]net.Conn, 0, slow)
	for i := range slow {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer c.Close()
		// Half on a fresh connection, half after a first request (the idle
		// wait is then over and the header timeout runs).
		if i%2 == 1 {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
			if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.test\r\nX-Slow: ")
		conns = append(conns, c)
	}
	for i := range 20 {
		if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 || body != "w1" {
			t.Fatalf("request %d during the slowloris: %d %q", i, status, body)
		}
	}
	// The slow clients keep trickling; the header timeout still cuts them.
	for _, c := range conns[:10] {
		_, _ = c.Write([]byte("a"))
	}
	for i, c := range conns {
		waitClosed(t, c, fmt.Sprintf("slow connection %d", i))
	}
	if status, _ := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 {
		t.Fatalf("after the slowloris: %d", status)
	}
}

func TestIdleTimeout(t *testing.T) {
	p, srv := newTestProxyServer(t, Options{}, ServerOptions{IdleTimeout: 200 * time.Millisecond})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{}, Targets: targets(b)})
	c, br := rawConn(t, srv)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "w1" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	waitClosed(t, c, "idle keep-alive connection")
	if n := p.conns.Load(); n != 0 {
		waitFor(t, "the connection count to drop", func() bool { return p.conns.Load() == 0 })
	}
}

func TestHeaderSizeLimit(t *testing.T) {
	p, srv := newTestProxyServer(t, Options{}, ServerOptions{MaxHeaderBytes: 16 << 10})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{}, Targets: targets(b)})
	for _, tc := range []struct {
		size   int
		status int
	}{
		{2 << 10, 200},  // the front serves it
		{12 << 10, 200}, // too big for the front's buffer: net/http serves it
		{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("X-Big", strings.Repeat("b", tc.size))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%d byte header: %v", tc.size, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%d byte header: status %d, want %d", tc.size, res.StatusCode, tc.status)
		}
	}
}

// TestFront drives the front with raw HTTP/1.1: keep-alive, pipelining,
// HEAD, Connection: close, and the requests it hands to net/http on the
// same connection.
func TestFront(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	echo := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s %s body=%q", r.Method, r.URL.RequestURI(), r.Header.Get("X-Test"), body)
	})
	mustSetApp(t, p, "echo", RouteTargets{Route: Route{}, Targets: []Target{{ID: "e", Addr: echo.Listener.Addr().String()}}})

	c, br := rawConn(t, srv)
	// Two pipelined GETs, a HEAD, a POST with a body (handed to net/http),
	// then a GET that net/http serves on the same connection.
	fmt.Fprintf(c, "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: one\r\n\r\nGET /b HTTP/1.1\r\nhost: h\r\nx-test: two\r\n\r\n")
	for _, want := range []string{`GET /a?x=1 one body=""`, `GET /b two body=""`} {
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != want || res.Header.Get("X-Method") != "GET" {
			t.Fatalf("pipelined: %d %q, want %q", res.StatusCode, body, want)
		}
	}
	fmt.Fprintf(c, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, body := readResponse(t, br, "HEAD"); res.StatusCode != 200 || body != "" || res.ContentLength != int64(len(`HEAD /h  body=""`)) {
		t.Fatalf("HEAD: %d %q length %d", res.StatusCode, body, res.ContentLength)
	}
	fmt.Fprintf(c, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != `POST /p  body="hello"` {
		t.Fatalf("POST: %d %q", res.StatusCode, body)
	}
	fmt.Fprintf(c, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != `GET /after  body=""` {
		t.Fatalf("GET after the hand-off: %d %q", res.StatusCode, body)
	}

	// Connection: close is honored.
	c2, br2 := rawConn(t, srv)
	fmt.Fprintf(c2, "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if res, _ := readResponse(t, br2, "GET"); res.StatusCode != 200 || !res.Close {
		t.Fatalf("Connection: close: %d close=%v", res.StatusCode, res.Close)
	}
	waitClosed(t, c2, "Connection: close")

	// What the front does not serve, net/http answers as it always does:
	// malformed requests, HTTP/1.0, absolute-form targets, LF-only lines,
	// framing and folding the front does not take on.
	for _, tc := range []struct{ req, status string }{
		{"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\n\r\n", "400"}, // no Host
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "200"}, // net/http: chunked wins
		{"GET / HTTP/1.0\r\nHost: h\r\n\r\n", "200"},
		{"GET http://h/abs HTTP/1.1\r\nHost: h\r\n\r\n", "200"},
		{"GET /lf HTTP/1.1\nHost: h\n\n", "200"},
		{"GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n", "200"}, // net/http unfolds
	} {
		c, br := rawConn(t, srv)
		fmt.Fprint(c, tc.req)
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, " "+tc.status+" ") {
			t.Errorf("%q: got %q %v, want status %s", tc.req, line, err, tc.status)
		}
	}
}

// TestFrontChunkedAndTrailers proxies a chunked response with trailers
// through the front.
func TestFrontChunkedAndTrailers(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "abc")
	})
	mustSetApp(t, p, "up", RouteTargets{Route: Route{}, Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "part0;part1;part2;" || res.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("body %q trailer %v", body, res.Trailer)
	}
}

// TestServerShutdown lets the request in flight finish, closes idle
// connections and refuses new ones.
func TestServerShutdown(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	mustSetApp(t, p, "s", RouteTargets{Route: Route{}, Targets: []Target{{ID: "s", Addr: slow.Listener.Addr().String()}}})

	idle, ibr := rawConn(t, srv)
	fmt.Fprintf(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, ibr, "GET")

	type result struct {
		status int
		body   string
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		s, b, err := tryGet(srv.Client(), srv.URL+"/slow", "h")
		ch <- result{s, b, err}
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Server.Shutdown(context.Background()) }()
	waitClosed(t, idle, "idle connection at shutdown")
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if r := <-ch; r.err != nil || r.status != 200 || r.body != "done" {
		t.Fatalf("request in flight at shutdown: %+v", r)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestFrontConcurrent runs many clients through the front and net/http
// together (GETs and POSTs) to shake out races.
func TestFrontConcurrent(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	bs := []*backend{newBackend(t, "w1"), newBackend(t, "w2")}
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{}, Targets: targets(bs...)})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				var res *http.Response
				var err error
				if (i+j)%3 == 0 {
					res, err = srv.Client().Post(srv.URL, "text/plain", strings.NewReader("data"))
				} else {
					res, err = srv.Client().Get(srv.URL)
				}
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || (string(b) != "w1" && string(b) != "w2") {
					errs <- fmt.Errorf("%d %q", res.StatusCode, b)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestServerHandler serves a handler wrapping the proxy (as the edge does):
// its own answers (a redirect, written without a length) come back with a
// Content-Length, on a connection that stays open.
func TestServerHandler(t *testing.T) {
	p := New(Options{Logger: testLogger(t)})
	t.Cleanup(func() { p.Close() })
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{}, Targets: targets(b)})
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Strict-Transport-Security", "max-age=60")
		p.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewServer(ServerOptions{Handler: wrap})
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /old HTTP/1.1\r\nHost: h\r\n\r\n")
	res, body := readResponse(t, br, "GET")
	if res.StatusCode != 301 || res.Header.Get("Location") != "/new" || res.ContentLength != int64(len(body)) || len(body) == 0 || res.Close {
		t.Fatalf("redirect: %d %v %q", res.StatusCode, res.Header, body)
	}
	fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	res, body = readResponse(t, br, "GET")
	if res.StatusCode != 200 || body != "w1" || res.Header.Get("Strict-Transport-Security") != "max-age=60" {
		t.Fatalf("proxied: %d %v %q", res.StatusCode, res.Header, body)
	}
}
