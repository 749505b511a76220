package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"
)

// rawBackend answers every request with a canned 13-byte response, with no
// allocation of its own, so benchmarks count the proxy's.
func rawBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkFrontProxy measures a keep-alive GET through the front and the
// fast upstream path: the allocations per request are the proxy's (the
// client and backend here allocate nothing per request).
func BenchmarkFrontProxy(b *testing.B) {
	p, srv := newTestProxy(b, Options{})
	mustSetApp(b, p, "shop", RouteTargets{
		Route:   Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Interval: time.Hour}},
		Targets: []Target{{ID: "w1", Addr: rawBackend(b)}},
	})
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /path?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	clen := []byte("Content-Length: ")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if bytes.HasPrefix(line, clen) {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(clen):])))
			}
		}
		if n != 13 {
			b.Fatalf("Content-Length %d", n)
		}
		if _, err := br.Discard(n); err != nil {
			b.Fatal(err)
		}
	}
}
