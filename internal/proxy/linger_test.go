package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With CloseIdleAfter, Shutdown does not close a keep-alive connection
// under a client about to reuse it: its next request is answered, with
// "Connection: close", on the front (a GET) and on net/http (a POST), and
// Shutdown returns once they are closed, without waiting out the linger.
func TestShutdownLetsIdleConnectionsFinish(t *testing.T) {
	schemes(t, testShutdownLetsIdleConnectionsFinish)
}

func testShutdownLetsIdleConnectionsFinish(t *testing.T, sch scheme) {
	b := newBackend(t, "web")
	p, ts := newTestProxyScheme(t, sch, Options{}, ServerOptions{CloseIdleAfter: 30 * time.Second})
	mustSetApp(t, p, "app", RouteTargets{Route: Route{Service: "web"}, Targets: targets(b)})

	get := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	post := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	type conn struct {
		c  net.Conn
		br *bufio.Reader
		rq string
	}
	var conns []conn
	for _, rq := range []string{get, post} {
		c, err := ts.tryDial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cn := conn{c, bufio.NewReader(c), rq}
		if _, err := c.Write([]byte(rq)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(cn.br, nil)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("before the shutdown: %v %v", resp, err)
		}
		resp.Body.Close()
		conns = append(conns, cn)
	}

	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- ts.Server.Shutdown(context.Background()) }()
	waitFor(t, "the server to stop listening", func() bool { return ts.Server.closing.Load() })

	for _, cn := range conns {
		cn.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := cn.c.Write([]byte(cn.rq)); err != nil {
			t.Fatalf("%s on an idle connection during the shutdown: %v", strings.Fields(cn.rq)[0], err)
		}
		resp, err := http.ReadResponse(cn.br, nil)
		if err != nil {
			t.Fatalf("%s on an idle connection during the shutdown: %v", strings.Fields(cn.rq)[0], err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !resp.Close {
			t.Fatalf("%s during the shutdown: status %d, Connection: close %v; want 200 and the connection's end announced", strings.Fields(cn.rq)[0], resp.StatusCode, resp.Close)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown waited for the linger although every connection closed")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
}
