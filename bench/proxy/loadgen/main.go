// Command loadgen drives HTTP load for moorage's proxy benchmarks: a fixed
// rate (open loop, latency from each request's intended send time), as fast
// as possible (closed loop), or holding idle keep-alive connections.
//
//	loadgen -url http://127.0.0.1:8080/ -rate 5000 -duration 10s
//	loadgen -url http://127.0.0.1:8080/ -conns 50 -duration 10s        # max throughput
//	loadgen -url http://127.0.0.1:8080/ -hold 1000 -hold-for 30s
//	loadgen -url https://127.0.0.1:8443/ -conns 32 -new-conns             # new TLS connections per second
//
// https:// URLs are served with TLS 1.3, X25519 and HTTP/1.1 by ALPN, the
// certificate not verified (loadgen.DefaultTLS).
//
// It prints a human summary, or a JSON report with -json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moorage/moorage/bench/loadgen"
)

func main() {
	var cfg loadgen.Config
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080/", "URL to request")
	flag.StringVar(&cfg.Host, "host", "", "Host header (default: the URL's)")
	flag.IntVar(&cfg.Conns, "conns", 32, "keep-alive connections")
	flag.StringVar(&cfg.Method, "method", "", "request method (default GET, or POST with -body-bytes)")
	bodyBytes := flag.Int("body-bytes", -1, "send a request body of this many bytes (-1: none)")
	flag.Float64Var(&cfg.Rate, "rate", 0, "requests per second (0: closed loop, as fast as possible)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up before the measurement")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.BoolVar(&cfg.NewConns, "new-conns", false, "every request on a new connection (Connection: close; over https a full TLS handshake each)")
	asJSON := flag.Bool("json", false, "print a JSON report")
	hold := flag.Int("hold", 0, "hold this many idle keep-alive connections instead of sending load")
	holdFor := flag.Duration("hold-for", time.Hour, "with -hold: how long to hold them (or until SIGTERM)")
	flag.Parse()
	if *bodyBytes >= 0 {
		cfg.Body = make([]byte, *bodyBytes)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *hold > 0 {
		ctx, cancel := context.WithTimeout(ctx, *holdFor)
		defer cancel()
		err := loadgen.Hold(ctx, cfg.URL, cfg.Host, *hold, nil, func() { fmt.Printf("holding %d connections\n", *hold) })
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}

	r, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *asJSON {
		out := struct {
			Mode       string          `json:"mode"`
			Rate       float64         `json:"rate"`
			Conns      int             `json:"conns"`
			Seconds    float64         `json:"seconds"`
			Requests   int64           `json:"requests"`
			Errors     int64           `json:"errors"`
			Non2xx     int64           `json:"non_2xx"`
			Unsent     int64           `json:"unsent"`
			Throughput float64         `json:"throughput"`
			Latency    loadgen.Summary `json:"latency"`
			FirstError string          `json:"first_error,omitempty"`
		}{"closed", cfg.Rate, cfg.Conns, r.Elapsed.Seconds(), r.Requests, r.Errors, r.Non2xx, r.Unsent, r.Throughput, r.Latency.Summary(), r.FirstError}
		if cfg.Rate > 0 {
			out.Mode = "open"
		}
		_ = json.NewEncoder(os.Stdout).Encode(out)
		return
	}
	fmt.Println(r)
}
