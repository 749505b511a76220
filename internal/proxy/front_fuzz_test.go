//go:build unix

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// frontSeeds are the classics of request smuggling and header confusion,
// as a client's bytes on one connection.
var frontSeeds = []string{
	// Plain, pipelined, keep-alive and close.
	"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /a?b=c HTTP/1.1\r\nHost: app.test\r\nUser-Agent: x\r\nAccept: */*\r\n\r\nHEAD /h HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\nGET /after-close HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\r\n",
	// Pipelined: the second malformed, or smuggled behind a body.
	"GET /1 HTTP/1.1\r\nHost: app.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\nBad Header: x\r\n\r\n",
	"GET /1 HTTP/1.1\r\nHost: app.test\r\n\r\nGET /2 HTTP/1.1\nHost: app.test\n\n",
	"GET /1 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n",
	// Content-Length and Transfer-Encoding: CL.TE, TE.CL, duplicates.
	"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
	"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0, 0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: +0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nGET /x",
	"GET / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked , identity\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: identity\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length : 0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\n Transfer-Encoding: chunked\r\n\r\n",
	// Line folding, bare LF and CR, NUL.
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n\tTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\nHost: app.test\n\n",
	"GET / HTTP/1.1\r\nHost: app.test\nX-A: 1\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\nX-Injected: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\rX-Injected: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-A: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-A: a\x00b\r\n\r\n",
	"GET /\x00 HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	// Header names.
	"GET / HTTP/1.1\r\nHost: app.test\r\nX A: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-A : 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\n: empty\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX(A): 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-\xffA: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-A: \xff\xfe obs-text\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-Empty:\r\nX-Spaces:   \t \r\n\r\n",
	"GET / HTTP/1.1\r\nhost: app.test\r\nx-forwarded-for: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.1\r\nx-forwarded-proto: https\r\nX-Forwarded-Host: evil.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded_Proto: https\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: client-id-1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nPragma: no-cache\r\n\r\n",
	// Host: missing, duplicated, userinfo, odd.
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nhost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: user:pass@app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: \r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test:8080\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test/evil\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: APP.TEST.\r\n\r\n",
	// Request targets.
	"GET http://app.test/abs HTTP/1.1\r\nHost: other.test\r\n\r\n",
	"GET //app.test/x HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n",
	"CONNECT /x HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /a/../../etc/passwd HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /static/../static/hello.txt HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /static/%2e%2e/secret.txt HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /static/link-out.txt HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /static/hello.txt%00.png HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /static/hello.txt HTTP/1.1\r\nHost: app.test\r\nRange: bytes=0-4\r\n\r\n",
	"GET /a%2fb%2F..%2f?x=%00&y HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /\xc3\xa4?\xff HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /a#frag HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /? HTTP/1.1\r\nHost: app.test\r\n\r\n",
	// Request lines: versions, spaces, tabs, methods.
	"GET / HTTP/1.0\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.10\r\nHost: app.test\r\n\r\n",
	"GET / http/1.1\r\nHost: app.test\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: app.test\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET\t/ HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /\tHTTP/1.1\r\nHost: app.test\r\n\r\n",
	" GET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"get / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"head / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"G(T / HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"DELETE /x HTTP/1.1\r\nHost: app.test\r\nIdempotency-Key: k\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello",
	"POST /p HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	// Expect, Upgrade, TE, hop-by-hop.
	"GET / HTTP/1.1\r\nHost: app.test\r\nExpect: 100-continue\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: app.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
	"GET / HTTP/1.1\r\nHost: app.test\r\nExpect: bogus\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nTE: trailers\r\nTrailer: X-T\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n\r\n",
	// Big heads.
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: " + strings.Repeat("b", 9000) + "\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: " + strings.Repeat("b", 8100) + "\r\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET /" + strings.Repeat("p", 8180) + " HTTP/1.1\r\nHost: app.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\n" + strings.Repeat("X-Many: 1\r\n", 600) + "\r\n",
	// Incomplete.
	"GET / HTTP/1.1\r\nHost: app.test\r\n",
	"GET / HTTP/1.1\r\nHost: app.test\r\n\r\nGET /2 HTTP/1.1\r\nHo",
}

// frontRecord is a request as the handler behind the front saw it.
type frontRecord struct {
	front  bool // served by the front (else by net/http)
	id     string
	method string
	uri    string
	host   string
	proto  string
	header http.Header
	close  bool
	tls    bool // Request.TLS was set
}

// frontHarness is a Proxy served by its Server on loopback, behind a
// handler that records every request and whether the front served it,
// with a recording app instance and a static directory.
type frontHarness struct {
	p       *Proxy
	ln      *pipeListener // clients connect over socket pairs: no TCP churn
	tlsLn   *pipeListener // the same server's TLS listener
	tlsConf *tls.Config   // its clients' side
	backend *scriptBackend
	panics  *panicCatcher

	mu     sync.Mutex
	byConn map[string][]*frontRecord // by client address
	ids    atomic.Uint64
}

func newFrontHarness(t testing.TB) *frontHarness {
	t.Helper()
	h := &frontHarness{panics: &panicCatcher{}, byConn: map[string][]*frontRecord{}}
	h.p = New(Options{Logger: slog.New(h.panics), ResponseHeaderTimeout: 10 * time.Second})
	h.backend = newScriptBackend(t, func(c net.Conn, r *upstreamRequest) bool {
		_, err := io.WriteString(c, okResponse("ok:"+r.req.Header.Get(headerRequestID)))
		return err == nil
	})
	h.backend.abortive = true
	mustSetApp(t, h.p, "app", RouteTargets{
		Route: Route{
			Health: HealthCheck{Interval: time.Hour},
			Static: map[string]string{"/static/": staticTree(t)},
		},
		Targets: []Target{{ID: "a1", Addr: h.backend.addr()}},
	})
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, front := w.(*frontResponse)
		rec := &frontRecord{
			front: front, id: fmt.Sprintf("fz-%d", h.ids.Add(1)), method: r.Method, uri: r.RequestURI,
			host: r.Host, proto: r.Proto, header: r.Header.Clone(), close: r.Close, tls: r.TLS != nil,
		}
		h.mu.Lock()
		h.byConn[r.RemoteAddr] = append(h.byConn[r.RemoteAddr], rec)
		h.mu.Unlock()
		r.Header[headerRequestID] = []string{rec.id} // to find it at the app
		h.p.ServeHTTP(w, r)
	})
	h.ln, h.tlsLn = newPipeListener(), newPipeListener()
	h.tlsConf = testClientTLS(t, "http/1.1")
	h.tlsConf.ServerName = "localhost"
	s := h.p.NewServer(ServerOptions{Handler: wrap, ReadHeaderTimeout: 5 * time.Second})
	var done sync.WaitGroup
	done.Go(func() { _ = s.Serve(h.ln) })
	serverTLS := testServerTLS(t)
	done.Go(func() { _ = s.ServeTLS(h.tlsLn, serverTLS) })
	t.Cleanup(func() {
		_ = s.Close()
		done.Wait()
		_ = h.p.Close()
	})
	return h
}

// exchange sends data as one client connection, over TLS or not (then
// half-closes it) and returns everything the server sent back, the
// requests it handled and the client's address.
func (h *frontHarness) exchange(t *testing.T, data []byte, overTLS bool) ([]byte, []*frontRecord, string) {
	t.Helper()
	var c net.Conn
	if overTLS {
		c = h.tlsLn.dial(t)
	} else {
		c = h.ln.dial(t)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	defer func() {
		h.mu.Lock()
		delete(h.byConn, local)
		h.mu.Unlock()
	}()
	// The server must end the exchange itself (it read the client's EOF);
	// hitting this deadline means it hung. (Generous, but under the fuzzing
	// engine's 10s, past which it reports a hang without saying where.)
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	if overTLS {
		tc := tls.Client(c, h.tlsConf)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		c = tc
	}
	_, _ = c.Write(data) // the server may close early (Connection: close, errors)
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.CloseWrite() // close_notify: the server reads an EOF
	} else {
		_ = c.(*pipeConn).CloseWrite()
	}
	out, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server neither finished nor closed the connection: sent %q, got %q", truncateBytes(data), truncateBytes(out))
	}
	h.mu.Lock()
	recs := h.byConn[local]
	h.mu.Unlock()
	return out, recs, c.LocalAddr().(*net.TCPAddr).IP.String()
}

// upstream returns (and forgets) what the app received.
func (h *frontHarness) upstream() []*upstreamRequest {
	h.backend.mu.Lock()
	defer h.backend.mu.Unlock()
	seen := h.backend.seen
	h.backend.seen = nil
	return seen
}

// FuzzFrontMatchesNetHTTP feeds arbitrary bytes to the front as one
// client connection. Every request the front serves itself must be one
// net/http accepts, read the same way (method, target, Host, header
// fields, close), and reach the app as net/http read it (hop-by-hop
// fields dropped, X-Forwarded-* set); once the front hands a connection to
// net/http it serves nothing more on it; anything net/http rejects is
// never served by the front; nothing the proxy sends to an app is
// malformed; nothing panics or hangs; the file outside the static
// directory never comes back.
func FuzzFrontMatchesNetHTTP(f *testing.F) {
	for _, s := range frontSeeds {
		f.Add([]byte(s))
	}
	h := newFrontHarness(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip()
		}
		// The same bytes over plain HTTP and over TLS.
		checkFront(t, h, data, false)
		checkFront(t, h, data, true)
	})
}

// checkFront is one input of FuzzFrontMatchesNetHTTP, over TLS or not.
func checkFront(t *testing.T, h *frontHarness, data []byte, overTLS bool) {
	{
		h.upstream() // leftovers of an earlier input
		out, recs, clientIP := h.exchange(t, data, overTLS)
		ups := h.upstream()
		if p := h.panics.take(); p != "" {
			t.Fatalf("panic serving %q: %s", truncateBytes(data), p)
		}
		if bytes.Contains(out, []byte(secret)) {
			t.Fatalf("the secret outside the static directory was served for %q", truncateBytes(data))
		}
		upByID := map[string][]*upstreamRequest{}
		for _, u := range ups {
			if u.err != nil {
				t.Fatalf("the proxy sent the app a malformed request for %q: %v\n%q", truncateBytes(data), u.err, u.head)
			}
			id := u.req.Header.Get(headerRequestID)
			upByID[id] = append(upByID[id], u)
		}

		rd := bytes.NewReader(data)
		br := bufio.NewReaderSize(rd, 128<<10)
		consumed := func() int { return len(data) - rd.Len() - br.Buffered() }
		res := bufio.NewReader(bytes.NewReader(out))
		handedOff := false
		for i, rec := range recs {
			if rec.tls != overTLS {
				t.Fatalf("request %d over TLS %v: the handler saw Request.TLS set: %v (served by the front: %v)", i, overTLS, rec.tls, rec.front)
			}
			if !rec.front {
				handedOff = true
				continue
			}
			if handedOff {
				t.Fatalf("request %d: the front served a request after handing the connection to net/http: %q", i, truncateBytes(data))
			}
			start := consumed()
			ref, err := readRequestLikeServer(br)
			head := data[start:consumed()]
			if err != nil {
				t.Fatalf("request %d: the front served %q, which net/http rejects: %v", i, head, err)
			}
			if ref.ContentLength != 0 || len(ref.TransferEncoding) > 0 {
				t.Fatalf("request %d: the front served %q, which has a body for net/http", i, head)
			}
			compareFrontRequest(t, i, head, rec, ref)
			if ref.URL.Path != "/static" && !strings.HasPrefix(ref.URL.Path, "/static/") { // else a file answers
				u := upByID[rec.id]
				if len(u) == 0 {
					t.Fatalf("request %d: %q never reached the app", i, head)
				}
				for _, u := range u {
					compareUpstreamRequest(t, i, head, rec, ref, u.req, clientIP, overTLS)
				}
			}
			// The client's response to it, in order and well-formed.
			resp, err := http.ReadResponse(res, ref)
			if err != nil {
				t.Fatalf("request %d: %q: the response does not parse: %v\n%q", i, head, err, truncateBytes(out))
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("request %d: %q: the response body: %v", i, head, err)
			}
			if u := upByID[rec.id]; len(u) > 0 && resp.StatusCode == 200 && ref.Method != "HEAD" && string(body) != "ok:"+rec.id {
				t.Fatalf("request %d: %q got another request's response: %q", i, head, body)
			}
		}
	}
}

// readRequestLikeServer reads a request as net/http's server does: the
// checks of http.ReadRequest, then the server's own (Host required in
// HTTP/1.1, one valid Host, valid field names and values).
func readRequestLikeServer(br *bufio.Reader) (*http.Request, error) {
	// The server's checks need the Host fields, which ReadRequest drops:
	// read the head twice.
	head, err := peekHead(br)
	if err != nil {
		return nil, err
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	hosts, haveHost := hdr["Host"]
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != "CONNECT" {
		return nil, errors.New("missing required Host header")
	}
	if len(hosts) == 1 && !validHostHeader(hosts[0]) {
		return nil, errors.New("malformed Host header")
	}
	for k, vs := range req.Header {
		if !validFieldName(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vs {
			if !validFieldValue([]byte(v)) {
				return nil, errors.New("invalid header value")
			}
		}
	}
	if req.ProtoMajor != 1 {
		return nil, errors.New("unsupported protocol version")
	}
	return req, nil
}

// peekHead returns the bytes buffered in br from the next request on,
// unread.
func peekHead(br *bufio.Reader) ([]byte, error) {
	b, _ := br.Peek(br.Size())
	if len(b) == 0 {
		return nil, io.EOF
	}
	return b, nil
}

// validHostHeader is net/http's Host check (httpguts.ValidHostHeader).
func validHostHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0) {
			return false
		}
	}
	return true
}

// compareFrontRequest checks that the front read a request as net/http does.
func compareFrontRequest(t *testing.T, i int, head []byte, rec *frontRecord, ref *http.Request) {
	t.Helper()
	got := rec.header.Clone()
	want := ref.Header.Clone()
	for _, h := range []http.Header{got, want} {
		delete(h, "Host")
	}
	switch {
	case rec.method != ref.Method, rec.uri != ref.RequestURI, rec.host != ref.Host, rec.proto != ref.Proto, rec.close != ref.Close:
		t.Fatalf("request %d: %q\nfront:    %s %s %s Host=%q close=%v\nnet/http: %s %s %s Host=%q close=%v",
			i, head, rec.method, rec.uri, rec.proto, rec.host, rec.close, ref.Method, ref.RequestURI, ref.Proto, ref.Host, ref.Close)
	case !headersEqual(got, want):
		t.Fatalf("request %d: %q\nfront's header:    %q\nnet/http's header: %q", i, head, got, want)
	}
}

// compareUpstreamRequest checks that the app received the request net/http
// read, with the proxy's changes.
func compareUpstreamRequest(t *testing.T, i int, head []byte, rec *frontRecord, ref, up *http.Request, clientIP string, overTLS bool) {
	t.Helper()
	proto := "http"
	if overTLS {
		proto = "https"
	}
	want := forwardedHeader(ref.Header, clientIP, proto, ref.Host, rec.id)
	switch {
	case up.Method != ref.Method, up.RequestURI != ref.URL.RequestURI(), up.Host != ref.Host:
		t.Fatalf("request %d: %q reached the app as %s %s Host=%q", i, head, up.Method, up.RequestURI, up.Host)
	case !headersEqual(up.Header, want):
		t.Fatalf("request %d: %q\nthe app got: %q\nwant:        %q", i, head, up.Header, want)
	}
}

// forwardedHeader is what an app must receive of a client's header:
// hop-by-hop fields and those Connection lists dropped, the client's
// Forwarded and fields mimicking the proxy's dropped, X-Forwarded-For
// appended to, X-Forwarded-Proto and -Host and the request ID set.
func forwardedHeader(in http.Header, clientIP, proto, host, reqID string) http.Header {
	var listed []string
	for _, v := range in["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				listed = append(listed, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
	out := http.Header{}
	for k, vs := range in {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
			"Proxy-Authenticate", "Proxy-Authorization", "Host",
			"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", headerRequestID:
			continue
		}
		if slices.Contains(listed, k) || shadowsForwarded(k) {
			continue
		}
		out[k] = vs
	}
	xff := clientIP
	if prior := in["X-Forwarded-For"]; len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + clientIP
	}
	out["X-Forwarded-For"] = []string{xff}
	out["X-Forwarded-Proto"] = []string{proto}
	out["X-Forwarded-Host"] = []string{host}
	out[headerRequestID] = []string{reqID}
	return out
}

// shadowsForwarded reports whether a client's header name would read as
// one the proxy sets, once an app server maps "-" and "_" alike (CGI,
// WSGI): X_Forwarded_For.
func shadowsForwarded(k string) bool {
	if !strings.Contains(k, "_") {
		return false
	}
	switch strings.ToLower(strings.ReplaceAll(k, "_", "-")) {
	case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id":
		return true
	}
	return false
}

// panicCatcher is a slog handler that keeps the first logged panic, and
// the last warning.
type panicCatcher struct {
	mu    sync.Mutex
	first string
	warn  string
}

func (p *panicCatcher) Enabled(context.Context, slog.Level) bool { return true }

func (p *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	if r.Level >= slog.LevelWarn {
		p.mu.Lock()
		p.warn = msg
		p.mu.Unlock()
	}
	if strings.Contains(msg, "panic") {
		p.mu.Lock()
		if p.first == "" {
			p.first = msg
		}
		p.mu.Unlock()
	}
	return nil
}

func (p *panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCatcher) WithGroup(string) slog.Handler      { return p }

// lastWarning returns the last warning logged.
func (p *panicCatcher) lastWarning() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.warn
}

func (p *panicCatcher) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.first
	p.first = ""
	return s
}
