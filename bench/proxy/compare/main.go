// Command compare runs moorage's proxy benchmark: the backend direct,
// through moorage's proxy and through nginx, side by side in one run. It is
// started by run.sh pinned to one core, where it runs the load generator and
// the trivial backend (loadgen.Backend) in one process; it pins the proxies
// to the other core. (GOMAXPROCS=2 on that one core: the generator's pacer
// sleeps on a thread of its own, so intended send times are met within
// microseconds instead of Go's millisecond timer resolution when idle.)
//
// moorage is bench/proxy/moorageproxy: the proxy stack of `moorage server`
// (edge in front of the proxy, the server's defaults, health checks every
// second) without the rest of the server.
//
// Phases, each repeated -runs times with the three setups interleaved, in
// an order that rotates from run to run (so none is always first after a
// pause, or always last):
//
//  1. max throughput: closed loop, -conns keep-alive connections;
//  2. latency at half of nginx's max throughput: open loop (latency from
//     each request's intended send time); a proxy's added p99 is computed
//     per run, against the direct p99 of the same run (paired), and the
//     median of those differences is reported;
//  3. memory: RSS of each proxy holding -hold idle keep-alive client
//     connections, sampled several times per run;
//  4. with -tls: new connections per second, closed loop, each connection
//     a full TLS handshake and one request, and the proxy's CPU per new
//     connection.
//
// With -tls, moorage and nginx serve HTTPS with the same ECDSA P-256
// certificate (made per run) and the client speaks TLS 1.3 with X25519,
// HTTP/1.1 by ALPN, no session resumption (loadgen.DefaultTLS); the
// backend, and so the direct baseline, stays plain HTTP.
//
// The throughput and CPU ratios (moorage ÷ nginx) are medians of the
// per-run ratios; the added-p99 and RSS ratios divide the medians. It also
// reports the proxies' CPU time per request (from /proc), which is less
// sensitive than throughput to other load on a shared machine.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moorage/moorage/bench/loadgen"
)

type config struct {
	bin        string // directory with backend and moorageproxy
	out        string // directory for logs, configs and results
	nginx      string
	proxyCore  string
	duration   time.Duration
	warmup     time.Duration
	runs       int
	conns      int
	hold       int
	latConns   int
	rateFactor float64
	tls        bool
	cpuProfile bool
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "directory holding the built moorageproxy and nginx.conf.tmpl")
	flag.StringVar(&c.out, "out", "", "directory for logs and results (default: a temp dir)")
	flag.StringVar(&c.nginx, "nginx", "nginx", "nginx binary")
	flag.StringVar(&c.proxyCore, "proxy-core", "1", "CPU the proxies are pinned to")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each run")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before each run")
	flag.IntVar(&c.runs, "runs", 3, "runs of each measurement (medians reported)")
	flag.IntVar(&c.conns, "conns", 50, "connections of the max throughput runs")
	flag.IntVar(&c.latConns, "latency-conns", 50, "connections of the fixed-rate runs")
	flag.IntVar(&c.hold, "hold", 1000, "idle keep-alive client connections for the memory measurement")
	flag.Float64Var(&c.rateFactor, "rate-factor", 0.5, "fixed rate as a fraction of nginx's max throughput")
	flag.BoolVar(&c.tls, "tls", false, "the proxies serve HTTPS (TLS 1.3, X25519, an ECDSA P-256 certificate); adds new TLS connections per second")
	flag.BoolVar(&c.cpuProfile, "cpuprofile", false, "write a CPU profile of moorage's proxy over the whole benchmark to OUT/moorage.cpu.pprof")
	flag.Parse()
	if c.bin == "" {
		log.Fatal("-bin is required")
	}
	if c.out == "" {
		d, err := os.MkdirTemp("", "moorage-bench-")
		if err != nil {
			log.Fatal(err)
		}
		c.out = d
	}
	if err := run(c); err != nil {
		log.Fatal(err)
	}
}

// setup is one way to reach the backend.
type setup struct {
	name string
	url  string
	pid  int // the process whose CPU and memory count (0: none)
}

func run(c config) error {
	ctx := context.Background()
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	backendAddr := "127.0.0.1:" + ports[0]
	moorageAddr := "127.0.0.1:" + ports[1]
	nginxAddr := "127.0.0.1:" + ports[2]

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}()
	start := func(name string, env []string, args ...string) (*exec.Cmd, error) {
		logf, err := os.Create(filepath.Join(c.out, name+".log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		return cmd, nil
	}

	// The backend runs in this process: generator and backend share one
	// core under one Go scheduler, with no OS scheduling between them.
	bln, err := net.Listen("tcp", backendAddr)
	if err != nil {
		return err
	}
	defer bln.Close()
	go func() { _ = loadgen.Backend(bln, []byte("hello, world\n")) }()
	margs := []string{"taskset", "-c", c.proxyCore, filepath.Join(c.bin, "moorageproxy"), "-addr", moorageAddr, "-backend", backendAddr}
	var certFile, keyFile string
	scheme := "http"
	if c.tls {
		scheme = "https"
		if certFile, keyFile, err = writeCert(c.out); err != nil {
			return err
		}
		margs = append(margs, "-tls-cert", certFile, "-tls-key", keyFile)
	}
	if c.cpuProfile {
		margs = append(margs, "-cpuprofile", filepath.Join(c.out, "moorage.cpu.pprof"))
	}
	mp, err := start("moorage", []string{"GOMAXPROCS=1"}, margs...)
	if err != nil {
		return err
	}
	ngDir := filepath.Join(c.out, "nginx")
	if err := writeNginxConf(ngDir, nginxAddr, backendAddr, certFile, keyFile); err != nil {
		return err
	}
	ng, err := start("nginx", nil, "taskset", "-c", c.proxyCore, c.nginx, "-p", ngDir, "-e", filepath.Join(ngDir, "error.log"), "-c", filepath.Join(ngDir, "nginx.conf"))
	if err != nil {
		return err
	}
	for _, addr := range []string{backendAddr, moorageAddr, nginxAddr} {
		if err := waitListening(addr, 10*time.Second); err != nil {
			return err
		}
	}
	ngWorker, err := nginxWorker(ng.Process.Pid, 5*time.Second)
	if err != nil {
		return err
	}
	// The moorage process is taskset's child after exec: same PID.
	setups := []setup{
		{"direct", "http://" + backendAddr + "/", 0},
		{"moorage", scheme + "://" + moorageAddr + "/", mp.Process.Pid},
		{"nginx", scheme + "://" + nginxAddr + "/", ngWorker},
	}
	for _, s := range setups {
		r, err := loadgen.Run(ctx, loadgen.Config{URL: s.url, Conns: 4, Duration: 500 * time.Millisecond, TLS: clientTLS()})
		if err != nil || r.Failed() > 0 || r.Requests == 0 {
			return fmt.Errorf("%s does not answer: %v %v", s.name, err, r)
		}
	}
	results := &results{TLS: c.tls, Setups: map[string]*setupResult{}}
	for _, s := range setups {
		results.Setups[s.name] = &setupResult{}
	}
	mode := "plain HTTP"
	if c.tls {
		mode = "HTTPS (TLS 1.3, X25519, ECDSA P-256, HTTP/1.1)"
	}
	fmt.Printf("moorage proxy benchmark over %s — %s, GOMAXPROCS=1 proxies on CPU %s, generator+backend on the other\n",
		mode, runtime.Version(), c.proxyCore)
	fmt.Printf("logs and raw results: %s\n\n", c.out)

	// 1. Max throughput.
	for i := range c.runs {
		for _, s := range rotate(setups, i) {
			r, cpu, err := measure(ctx, s, loadgen.Config{URL: s.url, Conns: c.conns, Duration: c.duration, Warmup: c.warmup, TLS: clientTLS()})
			if err != nil {
				return err
			}
			sr := results.Setups[s.name]
			sr.MaxRPS = append(sr.MaxRPS, r.Throughput)
			sr.MaxFailed += r.Failed()
			if s.pid > 0 {
				sr.CPUPerReqMax = append(sr.CPUPerReqMax, cpu)
			}
			fmt.Printf("max throughput run %d/%d %-8s %8.0f req/s  cpu %5.1f µs/req  p99 %.3f ms  failed %d\n",
				i+1, c.runs, s.name, r.Throughput, cpu, r.Latency.Summary().P99, r.Failed())
		}
	}
	rate := c.rateFactor * median(results.Setups["nginx"].MaxRPS)
	results.Rate = rate

	// 2. Latency at a fixed rate.
	fmt.Println()
	for i := range c.runs {
		for _, s := range rotate(setups, i) {
			r, cpu, err := measure(ctx, s, loadgen.Config{URL: s.url, Conns: c.latConns, Rate: rate, Duration: c.duration, Warmup: c.warmup, TLS: clientTLS()})
			if err != nil {
				return err
			}
			sum := r.Latency.Summary()
			sr := results.Setups[s.name]
			sr.P50 = append(sr.P50, sum.P50)
			sr.P99 = append(sr.P99, sum.P99)
			sr.P999 = append(sr.P999, sum.P999)
			sr.RateFailed += r.Failed()
			if s.pid > 0 {
				sr.CPUPerReqRate = append(sr.CPUPerReqRate, cpu)
			}
			fmt.Printf("fixed rate %5.0f req/s run %d/%d %-8s p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  cpu %5.1f µs/req  failed %d\n",
				rate, i+1, c.runs, s.name, sum.P50, sum.P90, sum.P99, sum.P999, cpu, r.Failed())
		}
	}

	// 3. Memory with idle keep-alive connections, per run, sampled a few
	// times while they are held (the largest sample counts).
	fmt.Println()
	for i := range c.runs {
		for _, s := range rotate(setups[1:], i) {
			before, during, err := holdRSS(ctx, s, c.hold)
			if err != nil {
				return err
			}
			sr := results.Setups[s.name]
			sr.RSSIdleKB = append(sr.RSSIdleKB, before)
			sr.RSSHoldKB = append(sr.RSSHoldKB, during)
			fmt.Printf("memory run %d/%d %-8s RSS %6.1f MB before, %6.1f MB with %d open keep-alive connections\n",
				i+1, c.runs, s.name, float64(before)/1024, float64(during)/1024, c.hold)
		}
	}

	// 4. New TLS connections per second.
	if c.tls {
		fmt.Println()
		for i := range c.runs {
			for _, s := range rotate(setups[1:], i) {
				r, cpu, err := measure(ctx, s, loadgen.Config{URL: s.url, Conns: c.conns, Duration: c.duration, Warmup: c.warmup, TLS: clientTLS(), NewConns: true})
				if err != nil {
					return err
				}
				sr := results.Setups[s.name]
				sr.NewConnsPerSec = append(sr.NewConnsPerSec, r.Throughput)
				sr.CPUPerNewConn = append(sr.CPUPerNewConn, cpu)
				sr.MaxFailed += r.Failed()
				fmt.Printf("new TLS connections run %d/%d %-8s %7.0f conn/s  cpu %6.1f µs/conn  failed %d\n",
					i+1, c.runs, s.name, r.Throughput, cpu, r.Failed())
			}
		}
	}

	results.print(c)
	b, _ := json.MarshalIndent(results, "", "  ")
	return os.WriteFile(filepath.Join(c.out, "results.json"), b, 0o644)
}

// rotate returns setups starting at the i-th (modulo their number).
func rotate(setups []setup, i int) []setup {
	k := i % len(setups)
	return append(slices.Clone(setups[k:]), setups[:k]...)
}

// holdRSS opens n idle keep-alive client connections to s and returns its
// RSS before, and the largest of several samples while they are open.
func holdRSS(ctx context.Context, s setup, n int) (before, during int64, err error) {
	before, err = rssKB(s.pid)
	if err != nil {
		return 0, 0, err
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- loadgen.Hold(hctx, s.url, "", n, clientTLS(), func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-errc:
		return 0, 0, fmt.Errorf("%s: hold %d connections: %w", s.name, n, err)
	}
	// Samples over two seconds: the server settles into its idle state
	// (buffers released, the collector run) at its own pace.
	for range 5 {
		time.Sleep(400 * time.Millisecond)
		kb, err := rssKB(s.pid)
		if err != nil {
			return 0, 0, err
		}
		during = max(during, kb)
	}
	cancel()
	if err := <-errc; err != nil {
		return 0, 0, err
	}
	return before, during, nil
}

// measure runs one load and the CPU time pid used per answered request.
func measure(ctx context.Context, s setup, cfg loadgen.Config) (*loadgen.Report, float64, error) {
	var t0 time.Duration
	if s.pid > 0 {
		// CPU over the measured window only: the warm-up runs first.
		w := cfg
		w.Duration, w.Warmup = cfg.Warmup, 0
		if w.Duration > 0 {
			if _, err := loadgen.Run(ctx, w); err != nil {
				return nil, 0, err
			}
		}
		cfg.Warmup = 0
		t0, _ = cpuTime(s.pid)
	}
	r, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", s.name, err)
	}
	cpu := 0.0
	if s.pid > 0 {
		t1, _ := cpuTime(s.pid)
		if n := r.Requests - r.Errors; n > 0 {
			cpu = float64(t1-t0) / float64(time.Microsecond) / float64(n)
		}
	}
	return r, cpu, nil
}

type setupResult struct {
	MaxRPS        []float64 `json:"max_rps"`
	MaxFailed     int64     `json:"max_failed"`
	CPUPerReqMax  []float64 `json:"cpu_us_per_request_max"`
	P50           []float64 `json:"p50_ms"`
	P99           []float64 `json:"p99_ms"`
	P999          []float64 `json:"p99_9_ms"`
	RateFailed    int64     `json:"rate_failed"`
	CPUPerReqRate []float64 `json:"cpu_us_per_request_rate"`
	RSSIdleKB     []int64   `json:"rss_idle_kb"`
	RSSHoldKB     []int64   `json:"rss_hold_kb"`
	// With -tls: full handshakes (and one request) per second, closed loop.
	NewConnsPerSec []float64 `json:"new_conns_per_s,omitempty"`
	CPUPerNewConn  []float64 `json:"cpu_us_per_new_conn,omitempty"`
}

type results struct {
	TLS    bool                    `json:"tls"`
	Rate   float64                 `json:"rate"`
	Setups map[string]*setupResult `json:"setups"`
}

func (r *results) print(c config) {
	fmt.Printf("\n## Results: %d interleaved runs of %s, medians (best run in parentheses: on a shared machine the best run is the one least disturbed)\n\n", c.runs, c.duration)
	d, m, n := r.Setups["direct"], r.Setups["moorage"], r.Setups["nginx"]
	both := func(xs []float64, best func([]float64) float64, f string) string {
		return fmt.Sprintf(f+" ("+f+")", median(xs), best(xs))
	}
	fmt.Printf("| | direct | moorage | nginx | moorage ÷ nginx | target |\n|---|---|---|---|---|---|\n")
	tput := paired(m.MaxRPS, n.MaxRPS, func(a, b float64) float64 { return a / b })
	// The targets: plain HTTP ≥ 0.80 × nginx's throughput and ≤ 2 × its
	// added p99; HTTPS ≥ 0.90 and ≤ 1.5 ×.
	minTput, maxP99 := 0.8, 2.0
	if r.TLS {
		minTput, maxP99 = 0.9, 1.5
	}
	fmt.Printf("| max throughput (req/s, %d conns) | %s | %s | %s | **%.2f** (%.2f) | ≥ %.2f %s |\n", c.conns,
		both(d.MaxRPS, maxOf, "%.0f"), both(m.MaxRPS, maxOf, "%.0f"), both(n.MaxRPS, maxOf, "%.0f"),
		median(tput), maxOf(tput), minTput, mark(median(tput) >= minTput))
	cpu := paired(m.CPUPerReqMax, n.CPUPerReqMax, func(a, b float64) float64 { return a / b })
	fmt.Printf("| proxy CPU per request at max throughput (µs) | | %s | %s | %.2f (%.2f) | |\n",
		both(m.CPUPerReqMax, minOf, "%.1f"), both(n.CPUPerReqMax, minOf, "%.1f"), median(cpu), minOf(cpu))
	fmt.Printf("| p50 at %.0f req/s (ms) | %s | %s | %s | | |\n", r.Rate, both(d.P50, minOf, "%.3f"), both(m.P50, minOf, "%.3f"), both(n.P50, minOf, "%.3f"))
	fmt.Printf("| p99 at %.0f req/s (ms) | %s | %s | %s | | |\n", r.Rate, both(d.P99, minOf, "%.3f"), both(m.P99, minOf, "%.3f"), both(n.P99, minOf, "%.3f"))
	fmt.Printf("| p99.9 at %.0f req/s (ms) | %s | %s | %s | | |\n", r.Rate, both(d.P999, minOf, "%.3f"), both(m.P999, minOf, "%.3f"), both(n.P999, minOf, "%.3f"))
	// Added p99, run by run: a proxy's p99 minus the direct p99 measured
	// in the same run, next to it.
	sub := func(a, b float64) float64 { return a - b }
	addM, addN := paired(m.P99, d.P99, sub), paired(n.P99, d.P99, sub)
	am, an := median(addM), median(addN)
	check := func(am, an float64) bool {
		ok := am <= maxP99*max(an, 0) || am <= 0
		if an < 0.5 {
			ok = am <= max(maxP99*an, 1)
		}
		return ok
	}
	ratioP99 := func(am, an float64) string {
		if an <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", am/an)
	}
	fmt.Printf("| added p99 = p99 − direct p99 of the same run (ms) | | %s | %s | **%s** | ≤ %g× nginx's, ≤ 1 ms when nginx's < 0.5 ms %s |\n",
		both(addM, minOf, "%.3f"), both(addN, minOf, "%.3f"), ratioP99(am, an), maxP99, mark(check(am, an)))
	cpuRate := paired(m.CPUPerReqRate, n.CPUPerReqRate, func(a, b float64) float64 { return a / b })
	fmt.Printf("| proxy CPU per request at %.0f req/s (µs) | | %s | %s | %.2f | |\n", r.Rate,
		both(m.CPUPerReqRate, minOf, "%.1f"), both(n.CPUPerReqRate, minOf, "%.1f"), median(cpuRate))
	mb := func(kb []int64) []float64 {
		out := make([]float64, len(kb))
		for i, v := range kb {
			out[i] = float64(v) / 1024
		}
		return out
	}
	rssM, rssN := mb(m.RSSHoldKB), mb(n.RSSHoldKB)
	fmt.Printf("| RSS with %d idle keep-alive clients (MB; largest run in parentheses) | | %s | %s | %.2f | moorage ≤ 60 MB %s |\n", c.hold,
		both(rssM, maxOf, "%.1f"), both(rssN, maxOf, "%.1f"), median(rssM)/max(median(rssN), 0.001), mark(maxOf(rssM) <= 60))
	if r.TLS {
		hs := paired(m.NewConnsPerSec, n.NewConnsPerSec, func(a, b float64) float64 { return a / b })
		fmt.Printf("| new TLS connections per s (full handshake + 1 request, %d conns) | | %s | %s | %.2f (%.2f) | |\n", c.conns,
			both(m.NewConnsPerSec, maxOf, "%.0f"), both(n.NewConnsPerSec, maxOf, "%.0f"), median(hs), maxOf(hs))
		hcpu := paired(m.CPUPerNewConn, n.CPUPerNewConn, func(a, b float64) float64 { return a / b })
		fmt.Printf("| proxy CPU per new TLS connection (µs) | | %s | %s | %.2f (%.2f) | |\n",
			both(m.CPUPerNewConn, minOf, "%.1f"), both(n.CPUPerNewConn, minOf, "%.1f"), median(hcpu), minOf(hcpu))
	}
	fmt.Printf("| failed requests (all runs) | %d | %d | %d | | 0 |\n", d.MaxFailed+d.RateFailed, m.MaxFailed+m.RateFailed, n.MaxFailed+n.RateFailed)
}

// paired applies f to the values of two setups measured in the same run.
func paired(a, b []float64, f func(a, b float64) float64) []float64 {
	out := make([]float64, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		out = append(out, f(a[i], b[i]))
	}
	return out
}

func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Min(xs)
}

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuTime is the user+system CPU time pid has used (all threads).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" closing the command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// rssKB is pid's resident set size.
func rssKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// nginxWorker finds the worker process of the nginx master pid.
func nginxWorker(master int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master, master))
		if err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("no nginx worker under pid %d", master)
}

func freePorts(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		out = append(out, port)
	}
	return out, nil
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeNginxConf(dir, listen, backend, certFile, keyFile string) error {
	tmpl, err := os.ReadFile(filepath.Join(filepath.Dir(os.Args[0]), "nginx.conf.tmpl"))
	if err != nil {
		return fmt.Errorf("nginx.conf.tmpl next to the compare binary: %w", err)
	}
	for _, sub := range []string{"", "body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	ssl, tlsConf := "", ""
	if certFile != "" {
		ssl = "ssl "
		tlsConf = "        ssl_certificate " + certFile + ";\n" +
			"        ssl_certificate_key " + keyFile + ";\n" +
			"        ssl_protocols TLSv1.2 TLSv1.3;\n" +
			"        ssl_ecdh_curve X25519:prime256v1;\n"
	}
	conf := strings.NewReplacer("@DIR@", dir, "@LISTEN@", listen, "@BACKEND@", backend, "@SSL@", ssl, "@TLS@", tlsConf).Replace(string(tmpl))
	return os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
}

// clientTLS is the load generator's TLS config (for https URLs): TLS 1.3,
// X25519, HTTP/1.1, no resumption, with an SNI name as browsers send.
func clientTLS() *tls.Config {
	c := loadgen.DefaultTLS()
	c.ServerName = "bench.test"
	return c
}

// writeCert writes a self-signed ECDSA P-256 certificate for bench.test
// and 127.0.0.1, and its key, as PEM files in dir.
func writeCert(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"bench.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
