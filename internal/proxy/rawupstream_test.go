package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// upstreamRequest is a request as an app instance received it: the raw
// head bytes, net/http's reading of them and the body.
type upstreamRequest struct {
	head    []byte
	req     *http.Request
	body    []byte
	err     error // the head did not parse: the proxy sent a malformed request
	bodyErr error // the body broke off (as the client's may have)
}

// scriptBackend is an app instance on 127.0.0.1 that speaks raw HTTP/1.1:
// it reads each request strictly (net/http's parser on the exact bytes the
// proxy sent) and answers with whatever respond writes on the connection,
// so tests can send malformed, split or desynchronizing responses.
// respond returns false to close the connection.
type scriptBackend struct {
	ln      net.Listener
	respond func(c net.Conn, r *upstreamRequest) bool
	// abortive closes connections with a reset rather than a FIN, leaving
	// no TIME_WAIT behind (fuzzing opens and closes connections by the
	// hundred thousand; a new connection from a port whose old one sits
	// in TIME_WAIT on this side can stall).
	abortive bool

	mu    sync.Mutex
	seen  []*upstreamRequest
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newScriptBackend(t testing.TB, respond func(c net.Conn, r *upstreamRequest) bool) *scriptBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptBackend{ln: ln, respond: respond, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *scriptBackend) addr() string { return b.ln.Addr().String() }

func (b *scriptBackend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go b.serve(c)
	}
}

func (b *scriptBackend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		if b.abortive {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		r, ok := readUpstreamRequest(br)
		if !ok {
			return
		}
		b.mu.Lock()
		b.seen = append(b.seen, r)
		b.mu.Unlock()
		if r.err != nil || r.bodyErr != nil || !b.respond(c, r) {
			return
		}
	}
}

// closeConns closes every connection the backend has open.
func (b *scriptBackend) closeConns() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func (b *scriptBackend) close() {
	b.ln.Close()
	b.closeConns()
	b.wg.Wait()
}

// requests returns the requests received so far.
func (b *scriptBackend) requests() []*upstreamRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*upstreamRequest(nil), b.seen...)
}

// readUpstreamRequest reads one request; ok is false when the connection
// ended (or was never used, as a TCP health check) before a request began.
func readUpstreamRequest(br *bufio.Reader) (*upstreamRequest, bool) {
	var head []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if len(head) == 0 && len(line) == 0 {
				return nil, false
			}
			return &upstreamRequest{head: append(head, line...), err: fmt.Errorf("incomplete head: %w", err)}, true
		}
		head = append(head, line...)
		if len(head) > 1<<20 {
			return &upstreamRequest{head: head, err: errors.New("head over 1 MiB")}, true
		}
		if len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == "" {
			break
		}
	}
	r := &upstreamRequest{head: head}
	// A strict reading of the head: CRLF line ends only, no stray CR, LF
	// or NUL anywhere (net/http would tolerate bare LF).
	for i, line := range bytes.SplitAfter(head, []byte("\r\n")) {
		body := bytes.TrimSuffix(line, []byte("\r\n"))
		if len(line) > 0 && len(body) == len(line) || bytes.ContainsAny(body, "\r\n\x00") {
			r.err = fmt.Errorf("line %d of the head is malformed: %q", i, line)
			return r, true
		}
	}
	hosts := 0
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Host") {
			hosts++
		}
	}
	if hosts != 1 {
		r.err = fmt.Errorf("want one Host field, got %d", hosts)
		return r, true
	}
	r.req, r.err = http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if r.err != nil {
		return r, true
	}
	switch {
	case len(r.req.TransferEncoding) > 0:
		r.body, r.bodyErr = io.ReadAll(httputil.NewChunkedReader(br))
		for r.bodyErr == nil {
			line, err := br.ReadSlice('\n') // trailers
			if err != nil {
				r.bodyErr = err
			} else if len(line) <= 2 {
				break
			}
		}
	case r.req.ContentLength > 0:
		r.body = make([]byte, r.req.ContentLength)
		_, r.bodyErr = io.ReadFull(br, r.body)
	}
	return r, true
}

// okResponse is a well-formed response with body.
func okResponse(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// rawRoundTrip sends raw request bytes on a new connection to srv and
// reads one response (for method) off it.
func rawRoundTrip(t testing.TB, srv *testServer, raw, method string) (*http.Response, string, error) {
	t.Helper()
	c, err := srv.tryDial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body), err
}

// headersEqual reports whether two headers have the same fields and values.
func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

// truncateBytes quotes at most 2 KiB of b for a message.
func truncateBytes(b []byte) string {
	if len(b) > 2048 {
		return string(b[:2048]) + "…(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}
