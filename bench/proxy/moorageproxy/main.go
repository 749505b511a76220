// Command moorageproxy runs the proxy stack of `moorage server` with one
// route to one backend, for the proxy benchmarks: internal/edge (the front
// door policy: HTTPS redirects, canonical hosts, ACME challenges) in front
// of internal/proxy, served by the proxy's Server (its HTTP/1.1 front and
// the hardened net/http server behind it) with the server's default
// timeouts and limits, and the route as the engine builds it for a spec
// with defaults: an HTTP health check every second (health.path
// /healthz), hold_timeout 10s, no max_body, no access log.
//
// What it leaves out of `moorage server` is everything that is not on a
// request's path: the engine, the API, the store, the runtimes (the
// backend stands for an app instance).
//
// With -tls-cert and -tls-key it serves HTTPS instead, as `moorage server`
// serves its HTTPS listener: the same front over TLS, with the
// certificate manager's TLS config (certificates looked up by SNI per
// handshake; here the default route's own certificate files, tls: files).
//
//	GOMAXPROCS=1 taskset -c 1 moorageproxy -addr 127.0.0.1:8080 -backend 127.0.0.1:8081
//	GOMAXPROCS=1 taskset -c 1 moorageproxy -addr 127.0.0.1:8443 -backend 127.0.0.1:8081 -tls-cert cert.pem -tls-key key.pem
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
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/spec"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	backend := flag.String("backend", "127.0.0.1:8081", "the backend's address")
	host := flag.String("host", "", "the route's host (default: the default route)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	healthPath := flag.String("health-path", "/healthz", "the route's HTTP health check path")
	tlsCert := flag.String("tls-cert", "", "serve HTTPS with this PEM certificate (and -tls-key)")
	tlsKey := flag.String("tls-key", "", "the PEM private key of -tls-cert")
	flag.Parse()

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Close()
	front := edge.New(p, edge.Options{})
	var hosts []string
	if *host != "" {
		hosts = []string{*host}
	}
	// As the engine routes an app (internal/engine/steps.go): the edge
	// site, then the proxy route, with the spec's defaults.
	if err := front.SetApp("bench", []edge.Site{{Hosts: hosts}}); err != nil {
		log.Fatal(err)
	}
	err := p.SetApp("bench", []proxy.RouteTargets{{
		Route: proxy.Route{
			App: "bench", Service: "web", Hosts: hosts,
			Health:      proxy.HealthCheck{Path: *healthPath}, // default interval (1s), timeout, retries
			HoldTimeout: spec.DefaultHoldTimeout,
		},
		Targets: []proxy.Target{{ID: "bench-web-v1-1", Addr: *backend}},
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
	srv := p.NewServer(proxy.ServerOptions{Handler: front})
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
		cm, dir, err := httpsCerts(hosts, *tlsCert, *tlsKey)
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		defer cm.Close()
		go func() { _ = srv.ServeTLS(ln, cm.TLSConfig()) }()
	} else {
		go func() { _ = srv.Serve(ln) }()
	}
	fmt.Printf("moorage proxy listening on %s://%s → %s\n", scheme, ln.Addr(), *backend)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = srv.Close()
}

// httpsCerts is the certificate manager of `moorage server` with the
// route's site on the given certificate files (tls: files).
// Its data dir is a temporary one, returned to be removed.
func httpsCerts(hosts []string, cert, key string) (*certs.Manager, string, error) {
	dir, err := os.MkdirTemp("", "moorageproxy-certs-")
	if err != nil {
		return nil, "", err
	}
	if cert, err = filepath.Abs(cert); err == nil {
		key, err = filepath.Abs(key)
	}
	var cm *certs.Manager
	if err == nil {
		cm, err = certs.New(certs.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	}
	if err == nil {
		if err = cm.SetApp("bench", []certs.Site{{Service: "web", Hosts: hosts, Mode: spec.TLSFiles, Cert: cert, Key: key}}); err != nil {
			cm.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return cm, dir, nil
}
