// Command backend is the trivial upstream of the proxy benchmarks: it
// answers every request with a small fixed body over keep-alive HTTP/1.1.
//
// -mode nethttp (default) serves with net/http; -mode raw writes a canned
// response after reading each request head, costing a fraction of the CPU,
// for when the benchmark's shared core must not be the bottleneck.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"

	"github.com/moorage/moorage/bench/loadgen"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	mode := flag.String("mode", "nethttp", "nethttp or raw")
	size := flag.Int("body", 13, "response body size in bytes")
	flag.Parse()

	body := []byte("hello, world\n")
	if *size != len(body) {
		body = bytes.Repeat([]byte("x"), *size)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("backend (%s) listening on %s\n", *mode, ln.Addr())
	switch *mode {
	case "nethttp":
		clen := strconv.Itoa(len(body))
		log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{clen}
			_, _ = w.Write(body)
		})))
	case "raw":
		log.Fatal(loadgen.Backend(ln, body))
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}
