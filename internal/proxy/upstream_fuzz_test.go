//go:build unix

package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Flags of FuzzUpstreamResponse's first argument.
const (
	fuzzHead   = 1 << iota // the first client sends HEAD
	fuzzHangUp             // the app closes the connection after its answer
	fuzzHTTP10             // the first client speaks HTTP/1.0 (served by net/http, not the front)
	fuzzSplit              // the answer is written in two parts
)

// responseSeeds are answers a broken or malicious app instance might give.
var responseSeeds = []struct {
	flags uint8
	resp  string
}{
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
	{fuzzHead, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"},
	{fuzzHead, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
	{fuzzHead, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"},
	{fuzzHangUp, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhello"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nhello"},
	{fuzzHangUp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\nhello"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: a\x00b\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X-T: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 4000) + "\r\n"},
	{0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	{0, strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5000) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes"},
	{0, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"},
	{0, "HTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED"},
	{0, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"},
	{0, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"},
	{fuzzHangUp, "HTTP/1.1 200 OK\r\n\r\nuntil close"},
	{0, "HTTP/1.1 200 OK\r\nConnection: X-Hop, close\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 200 OK\r\nConnection: a,b,c,d,e,f,g,h,i,X-Hop\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
	{0, "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=b\rX-Injected: 1\r\n\r\nok"},
	{0, "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"},
	{0, "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	{0, "ICY 200 OK\r\n\r\nok"},
	{0, "garbage"},
	{0, ""},
	{fuzzHangUp, ""},
	{fuzzSplit, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"},
	{fuzzSplit | fuzzHTTP10, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{fuzzHTTP10 | fuzzHead, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED"},
	{0, "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
	{0, "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: 1\r\n", 7000) + "Content-Length: 2\r\n\r\nok"},
}

// upstreamHarness is a proxy in front of an app instance that answers
// /fuzz with the current input's bytes and every other request properly,
// with the request ID it got.
type upstreamHarness struct {
	p      *Proxy
	ln     *pipeListener // clients connect over socket pairs: no TCP churn
	panics *panicCatcher

	mu     sync.Mutex
	answer []byte
	split  int
	hangUp bool

	// written gets a value each time the instance has written an answer
	// and its peer has it all in its receive queue.
	written chan struct{}
}

func newUpstreamHarness(t testing.TB) *upstreamHarness {
	t.Helper()
	h := &upstreamHarness{panics: &panicCatcher{}, written: make(chan struct{}, 16)}
	h.p = New(Options{Logger: slog.New(h.panics), ResponseHeaderTimeout: 5 * time.Second})
	h.ln = newPipeListener()
	s := h.p.NewServer(ServerOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(h.ln)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
		_ = h.p.Close()
	})
	b := newScriptBackend(t, func(c net.Conn, r *upstreamRequest) bool {
		if r.req.URL.Path != "/fuzz" {
			_, err := io.WriteString(c, okResponse("next:"+r.req.Header.Get(headerRequestID)))
			return err == nil
		}
		h.mu.Lock()
		answer, split, hangUp := h.answer, h.split, h.hangUp
		h.mu.Unlock()
		defer func() {
			// Bytes past the end of a response can only be told from the
			// answer to the next request once they have arrived: wait
			// until the proxy's side has them all.
			deadline := time.Now().Add(5 * time.Second)
			for unacked(c) > 0 && !peerGone(c) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			h.written <- struct{}{}
		}()
		if split > 0 {
			if _, err := c.Write(answer[:split]); err != nil {
				return false
			}
			answer = answer[split:]
		}
		_, err := c.Write(answer)
		return err == nil && !hangUp
	})
	b.abortive = true
	mustSetApp(t, h.p, "app", RouteTargets{
		Route:   Route{Health: HealthCheck{Interval: time.Hour}},
		Targets: []Target{{ID: "a1", Addr: b.addr()}},
	})
	return h
}

// FuzzUpstreamResponse has an app instance answer a request with
// arbitrary bytes, then sends other clients' requests: they must get their
// own answers (a connection in an unknown state never goes back to the
// pool); the first client's exchange ends, whatever the bytes, once the
// app hangs up (or at once when net/http would find the answer complete);
// nothing panics.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add(s.flags, uint16(len(s.resp)/2), []byte(s.resp))
	}
	h := newUpstreamHarness(f)
	f.Fuzz(func(t *testing.T, flags uint8, split uint16, answer []byte) {
		if len(answer) > 256<<10 {
			t.Skip()
		}
		method := "GET"
		if flags&fuzzHead != 0 {
			method = "HEAD"
		}
		proto := "HTTP/1.1"
		if flags&fuzzHTTP10 != 0 {
			proto = "HTTP/1.0"
		}
		// An answer net/http cannot find the end of without a hang-up
		// gets one: the proxy may not know better.
		hangUp := flags&fuzzHangUp != 0 || !completeResponse(answer, method)
		h.mu.Lock()
		h.answer, h.split, h.hangUp = answer, 0, hangUp
		if flags&fuzzSplit != 0 && len(answer) > 0 {
			h.split = int(split) % len(answer)
		}
		h.mu.Unlock()
		h.p.lookupTarget("a1").recordCheck(nil, 1) // healthy, whatever an earlier input did
		for len(h.written) > 0 {
			<-h.written
		}

		c := h.ln.dial(t)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(8 * time.Second)) // under the fuzzing engine's 10s
		fmt.Fprintf(c, "%s /fuzz %s\r\nHost: app.test\r\n\r\n", method, proto)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the first client's exchange never ended (hang-up %v): %q", hangUp, truncateBytes(answer))
		}
		select {
		case <-h.written:
		case <-time.After(8 * time.Second):
			t.Fatal("the instance never got the first request")
		}
		for i := range 2 {
			id := fmt.Sprintf("n2-%d", i)
			c2 := h.ln.dial(t)
			_ = c2.SetDeadline(time.Now().Add(8 * time.Second))
			fmt.Fprintf(c2, "GET /next HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: %s\r\n\r\n", id)
			res, err := http.ReadResponse(bufio.NewReader(c2), nil)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			c2.Close()
			if err != nil || res.StatusCode != 200 || string(body) != "next:"+id {
				status := 0
				if res != nil {
					status = res.StatusCode
				}
				if w := h.panics.lastWarning(); status == http.StatusServiceUnavailable && strings.Contains(w, "dial") {
					// No answer makes the proxy fail to connect: the machine
					// is out of something (ports, backlog) under the churn.
					t.Skipf("environment: %s", w)
				}
				t.Fatalf("after the answer %q, client %d got %d %q %v (last warning: %s)", truncateBytes(answer), i, status, body, err, h.panics.lastWarning())
			}
		}
		if p := h.panics.take(); p != "" {
			t.Fatalf("panic proxying the answer %q: %s", truncateBytes(answer), p)
		}
	})
}

// completeResponse reports whether net/http's client finds the end of
// answer (interim responses skipped) without the connection closing.
func completeResponse(answer []byte, method string) bool {
	br := bufio.NewReader(bytes.NewReader(answer))
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return false
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		if res.StatusCode == http.StatusSwitchingProtocols || res.Close && res.ContentLength < 0 && len(res.TransferEncoding) == 0 {
			return false // until the connection ends
		}
		_, err = io.Copy(io.Discard, res.Body)
		return err == nil && (res.ContentLength >= 0 || len(res.TransferEncoding) > 0 || method == "HEAD" || res.Body == http.NoBody)
	}
}
