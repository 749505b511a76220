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
	c, err := srv.tryDial()
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

// TestSlowloris holds hundreds of connections that trickle a request head
// without end: normal requests keep succeeding meanwhile, and the server
// closes every slow connection once ReadHeaderTimeout passed, whoever
// reads the head: the front, or net/http once a head grew past the
// front's buffer (the hand-off keeps the head's deadline; net/http would
// otherwise start a fresh one).
func TestSlowloris(t *testing.T) { schemes(t, testSlowloris) }

func testSlowloris(t *testing.T, sch scheme) {
	const (
		limit = 3 * time.Second
		// slack is generous for a loaded machine, and smaller than the
		// time the large heads trickle before their hand-off: a fresh
		// ReadHeaderTimeout at the hand-off would overshoot it.
		slack = 1500 * time.Millisecond
		tick  = 50 * time.Millisecond
	)
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{ReadHeaderTimeout: limit})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{Hosts: []string{"shop.test"}}, Targets: targets(b)})

	type slowConn struct {
		c      net.Conn
		start  time.Time // when the head began
		closed chan time.Time
	}
	const slow = 300
	conns := make([]*slowConn, 0, slow)
	// The large heads fill all but trickleBytes of the front's buffer, so
	// they cross into net/http after trickling for about
	// trickleBytes*tick (2s): longer than slack, shorter than limit (later
	// on a slow machine, which only makes a second timeout's overshoot
	// larger, or has the front close them before the hand-off).
	const trickleBytes = 40
	for i := range slow {
		c, err := srv.tryDial()
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		// A third on a fresh connection, a third after a first request (the
		// idle wait is then over and the header timeout runs), a third with
		// a head larger than the front's buffer.
		if i%3 == 1 {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
			if _, err := http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		}
		sc := &slowConn{c: c, start: time.Now(), closed: make(chan time.Time, 1)}
		head := "GET / HTTP/1.1\r\nHost: shop.test\r\nX-Slow: "
		if i%3 == 2 {
			head += strings.Repeat("a", frontReadSize-len(head)-trickleBytes)
		}
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _ = io.Copy(io.Discard, br) // until the server closes it
			sc.closed <- time.Now()
		}()
		conns = append(conns, sc)
	}
	// The slow clients trickle a byte each per tick, without end.
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			for _, sc := range conns {
				_ = sc.c.SetWriteDeadline(time.Now().Add(tick))
				_, _ = sc.c.Write([]byte("a"))
			}
		}
	}()
	defer func() { close(stop); <-trickled }()

	for i := range 20 {
		if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 || body != "w1" {
			t.Fatalf("request %d during the slowloris: %d %q", i, status, body)
		}
	}
	for i, sc := range conns {
		bound := sc.start.Add(limit + slack)
		select {
		case at := <-sc.closed:
			if at.After(bound) {
				t.Errorf("slow connection %d (kind %d) closed %s after its head began, want at most %s",
					i, i%3, at.Sub(sc.start).Round(time.Millisecond), limit+slack)
			}
		case <-time.After(time.Until(bound) + 30*time.Second):
			t.Fatalf("slow connection %d (kind %d) still open %s after its head began", i, i%3, time.Since(sc.start).Round(time.Millisecond))
		}
	}
	if status, _ := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 {
		t.Fatalf("after the slowloris: %d", status)
	}
}

// deadlineConn records the read deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error { c.set = append(c.set, t); return nil }

// TestHandOffKeepsHeadDeadline: a connection handed to net/http keeps the
// deadline of the head being read until net/http has read it (net/http
// clears its deadline then), and net/http's own deadlines after that.
func TestHandOffKeepsHeadDeadline(t *testing.T) {
	base := time.Now()
	head := base.Add(time.Second)
	dc := &deadlineConn{}
	c := &prefixConn{Conn: dc, headDeadline: head}
	steps := []struct{ set, want time.Time }{
		{base.Add(10 * time.Second), head},                                   // net/http's ReadHeaderTimeout: bounded by the head's
		{base.Add(500 * time.Millisecond), base.Add(500 * time.Millisecond)}, // an earlier one stands
		{time.Time{}, time.Time{}},                                           // the head was read
		{base.Add(75 * time.Second), base.Add(75 * time.Second)},             // the idle timeout of the next request
		{base.Add(10 * time.Second), base.Add(10 * time.Second)},             // the next head's own timeout
	}
	for _, st := range steps {
		_ = c.SetReadDeadline(st.set)
	}
	for i, st := range steps {
		if !dc.set[i].Equal(st.want) {
			t.Errorf("deadline %d: set %v, want %v", i, dc.set[i], st.want)
		}
	}
	// Without a head deadline (the head was buffered whole), nothing is
	// bounded.
	dc2 := &deadlineConn{}
	c2 := &prefixConn{Conn: dc2}
	_ = c2.SetReadDeadline(base.Add(10 * time.Second))
	if !dc2.set[0].Equal(base.Add(10 * time.Second)) {
		t.Errorf("no head deadline: set %v", dc2.set[0])
	}
}

func TestIdleTimeout(t *testing.T) { schemes(t, testIdleTimeout) }

func testIdleTimeout(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{IdleTimeout: 200 * time.Millisecond})
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

// TestSmallHeaderSizeLimit: a MaxHeaderBytes below the front's buffer is
// enforced by the front (a 431 as net/http answers it), for complete heads,
// heads still arriving, and requests it would hand to net/http.
func TestSmallHeaderSizeLimit(t *testing.T) { schemes(t, testSmallHeaderSizeLimit) }

func testSmallHeaderSizeLimit(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{MaxHeaderBytes: 4 << 10})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{}, Targets: targets(b)})
	for _, tc := range []struct {
		name   string
		req    string
		status int
	}{
		{"small", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 2<<10) + "\r\n\r\n", 200},
		{"just under", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 4<<10-40) + "\r\n\r\n", 200},
		{"over, complete", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 6<<10) + "\r\n\r\n", 431},
		{"over, incomplete", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 5<<10), 431},
		{"over, past the buffer", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 12<<10) + "\r\n\r\n", 431},
		{"over, with a body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX-Big: " + strings.Repeat("b", 6<<10) + "\r\n\r\nhi", 431},
		{"over, LF line ends", "GET / HTTP/1.1\nHost: h\nX-Big: " + strings.Repeat("b", 6<<10) + "\n\n", 431},
	} {
		c, br := rawConn(t, srv)
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res, body := readResponse(t, br, "GET")
		if res.StatusCode != tc.status {
			t.Errorf("%s: status %d %q, want %d", tc.name, res.StatusCode, body, tc.status)
		}
		if tc.status == 431 {
			if body != "431 Request Header Fields Too Large" || !res.Close {
				t.Errorf("%s: body %q, close %v", tc.name, body, res.Close)
			}
			waitClosed(t, c, tc.name)
		}
	}
	// A later request on a kept-alive connection too.
	c, br := rawConn(t, srv)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, _ := readResponse(t, br, "GET"); res.StatusCode != 200 {
		t.Fatalf("first request: %d", res.StatusCode)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 6<<10))
	if res, _ := readResponse(t, br, "GET"); res.StatusCode != 431 {
		t.Fatalf("second request over the limit: %d", res.StatusCode)
	}
}

// TestHeldRequestClientGoes: a request held for a healthy target stops
// waiting as soon as its client goes away, on the front (which has no
// per-request context) and on net/http, instead of holding until
// HoldTimeout.
func TestHeldRequestClientGoes(t *testing.T) { schemes(t, testHeldRequestClientGoes) }

func testHeldRequestClientGoes(t *testing.T, sch scheme) {
	var mu sync.Mutex
	var lines []string
	p, srv := newTestProxyScheme(t, sch, Options{AccessLog: lockedWriterFunc(func(b []byte) {
		mu.Lock()
		lines = append(lines, string(b))
		mu.Unlock()
	})}, ServerOptions{})
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{HoldTimeout: time.Hour}}) // no target at all
	for _, tc := range []struct{ name, req string }{
		{"front", "GET /held HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"net/http", "POST /held HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"},
	} {
		c, _ := rawConn(t, srv)
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatal(err)
		}
		waitFor(t, tc.name+": the request to hold", func() bool { return p.holding.Load() == 1 })
		c.Close()
		waitFor(t, tc.name+": the held request to end with its client", func() bool { return p.holding.Load() == 0 })
	}
	waitFor(t, "two access log lines", func() bool { mu.Lock(); defer mu.Unlock(); return len(lines) == 2 })
	for _, l := range lines {
		if !strings.Contains(l, `"status":499`) {
			t.Errorf("access log of a request whose client left: %s", l)
		}
	}

	// A held front request whose client stays is answered, on a
	// connection that goes on serving.
	b := newBackend(t, "w1")
	c, br := rawConn(t, srv)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, "the request to hold", func() bool { return p.holding.Load() == 1 })
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{HoldTimeout: time.Hour}, Targets: targets(b)})
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "w1" {
		t.Fatalf("held request: %d %q", res.StatusCode, body)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "w1" {
		t.Fatalf("next request on the connection: %d %q", res.StatusCode, body)
	}
}

func TestHeaderSizeLimit(t *testing.T) { schemes(t, testHeaderSizeLimit) }

func testHeaderSizeLimit(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{MaxHeaderBytes: 16 << 10})
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
func TestFront(t *testing.T) { schemes(t, testFront) }

func testFront(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
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
func TestFrontChunkedAndTrailers(t *testing.T) { schemes(t, testFrontChunkedAndTrailers) }

func testFrontChunkedAndTrailers(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
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
func TestServerShutdown(t *testing.T) { schemes(t, testServerShutdown) }

func testServerShutdown(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
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
func TestFrontConcurrent(t *testing.T) { schemes(t, testFrontConcurrent) }

func testFrontConcurrent(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
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

// A head whose last header line ends in a bare LF before the CRLF blank
// line is complete (net/http reads it so): it is answered at once, not
// after the header timeout.
func TestHeadEndingInLFCRLF(t *testing.T) { schemes(t, testHeadEndingInLFCRLF) }

func testHeadEndingInLFCRLF(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mustSetApp(t, p, "up", RouteTargets{Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})
	c, br := rawConn(t, srv)
	c.SetReadDeadline(time.Now().Add(3 * time.Second)) // well under the header timeout
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\nX-A: 1\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
}
