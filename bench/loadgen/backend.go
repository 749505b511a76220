package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
)

// Backend serves the benchmarks' trivial upstream on ln until ln is closed:
// every request gets body in a canned keep-alive HTTP/1.1 response, written
// as soon as the request head (and a Content-Length body) was read. It
// costs a fraction of a net/http server, so the core it shares with the
// generator is not what limits a benchmark.
func Backend(ln net.Listener, body []byte) error {
	resp := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveBackendConn(c, resp)
	}
}

var headerContentLength = []byte("content-length:")

func serveBackendConn(c net.Conn, resp []byte) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 8<<10)
	for {
		n := int64(0)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if hasPrefixFold(line, headerContentLength) {
				n, _ = strconv.ParseInt(string(bytes.TrimSpace(line[len(headerContentLength):])), 10, 64)
			}
		}
		if n > 0 {
			if _, err := io.CopyN(io.Discard, br, n); err != nil {
				return
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}
