// Command moorageproxy runs moorage's real proxy (internal/proxy, served by
// the hardened http.Server that `moorage server` uses) with one route to one
// backend, for the proxy benchmarks.
//
//	GOMAXPROCS=1 taskset -c 1 moorageproxy -addr 127.0.0.1:8080 -backend 127.0.0.1:8081
package main

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	backend := flag.String("backend", "127.0.0.1:8081", "the backend's address")
	host := flag.String("host", "", "the route's host (default: the default route)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	flag.Parse()

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Close()
	var hosts []string
	if *host != "" {
		hosts = []string{*host}
	}
	err := p.SetApp("bench", []proxy.RouteTargets{{
		Route:   proxy.Route{Hosts: hosts, Health: proxy.HealthCheck{Interval: time.Hour}},
		Targets: []proxy.Target{{ID: "bench-web-1", Addr: *backend}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	if *pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := p.NewServer(proxy.ServerOptions{})
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("moorage proxy listening on %s → %s\n", ln.Addr(), *backend)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = srv.Close()
}
