package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFrontTLS: over TLS, the front serves HTTP/1.1 requests itself with
// Request.TLS set; what it hands to net/http on the same connection keeps
// the TLS state; HTTP/2 (by ALPN) is net/http's; a plain HTTP client gets
// net/http's 400; a client that does not finish its handshake is closed
// after ReadHeaderTimeout.
func TestFrontTLS(t *testing.T) {
	type seen struct {
		front bool
		tls   bool
		proto string
	}
	var mu sync.Mutex
	byPath := map[string]seen{}
	var p *Proxy
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, front := w.(*frontResponse)
		mu.Lock()
		byPath[r.URL.Path] = seen{front, r.TLS != nil && r.TLS.HandshakeComplete, r.Proto}
		mu.Unlock()
		p.ServeHTTP(w, r)
	})
	const headTimeout = time.Second
	p, srv := newTestProxyScheme(t, "https", Options{}, ServerOptions{Handler: wrap, ReadHeaderTimeout: headTimeout})
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s proto=%s body=%q", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-Proto"), body)
	})
	mustSetApp(t, p, "app", RouteTargets{Route: Route{}, Targets: []Target{{ID: "u", Addr: up.Listener.Addr().String()}}})
	servedAs := func(path string) seen {
		mu.Lock()
		defer mu.Unlock()
		return byPath[path]
	}

	// HTTP/1.1: the front, then net/http after a hand-off, on one
	// connection.
	c, br := rawConn(t, srv)
	if st := c.(*tls.Conn).ConnectionState(); st.NegotiatedProtocol != "http/1.1" || st.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %q, TLS version %x", st.NegotiatedProtocol, st.Version)
	}
	fmt.Fprintf(c, "GET /front HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != `GET /front proto=https body=""` {
		t.Fatalf("GET over TLS: %d %q", res.StatusCode, body)
	}
	fmt.Fprintf(c, "POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != `POST /post proto=https body="hi"` {
		t.Fatalf("POST over TLS: %d %q", res.StatusCode, body)
	}
	fmt.Fprintf(c, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != `GET /after proto=https body=""` {
		t.Fatalf("GET after the hand-off: %d %q", res.StatusCode, body)
	}
	for path, want := range map[string]seen{
		"/front": {true, true, "HTTP/1.1"},
		"/post":  {false, true, "HTTP/1.1"},
		"/after": {false, true, "HTTP/1.1"},
	} {
		if got := servedAs(path); got != want {
			t.Errorf("%s: served as %+v, want %+v", path, got, want)
		}
	}

	// No ALPN at all: HTTP/1.1, the front's.
	noALPN := testClientTLS(t)
	c2, err := tls.Dial("tcp", srv.Listener.Addr().String(), noALPN)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /no-alpn HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, _ := readResponse(t, bufio.NewReader(c2), "GET"); res.StatusCode != 200 || !servedAs("/no-alpn").front {
		t.Fatalf("without ALPN: %d, served as %+v", res.StatusCode, servedAs("/no-alpn"))
	}

	// HTTP/2: net/http's, with the TLS state.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: testClientTLS(t, "h2", "http/1.1"), ForceAttemptHTTP2: true}}
	defer h2.CloseIdleConnections()
	res, err := h2.Get(srv.URL + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || string(body) != `GET /h2 proto=https body=""` {
		t.Fatalf("HTTP/2: %s %q", res.Proto, body)
	}
	if got := servedAs("/h2"); got != (seen{false, true, "HTTP/2.0"}) {
		t.Fatalf("HTTP/2 served as %+v", got)
	}

	// Plain HTTP on the TLS port: net/http's answer.
	pc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(pc, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	out, _ := io.ReadAll(pc)
	if !strings.HasPrefix(string(out), "HTTP/1.0 400 Bad Request") || !strings.Contains(string(out), "HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP to the TLS port: %q", out)
	}

	// A handshake that never comes (nothing, or half a ClientHello): closed
	// after ReadHeaderTimeout, not later.
	for _, partial := range []string{"", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"} {
		sc, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		start := time.Now()
		io.WriteString(sc, partial)
		waitClosed(t, sc, fmt.Sprintf("a handshake stalled after %d bytes", len(partial)))
		if d := time.Since(start); d < headTimeout-100*time.Millisecond {
			t.Fatalf("a stalled handshake was closed after %s, before ReadHeaderTimeout (%s)", d, headTimeout)
		}
	}
	if got := servedAs("/"); got != (seen{}) {
		t.Fatalf("a request reached the handler from a client without TLS: %+v", got)
	}
}
