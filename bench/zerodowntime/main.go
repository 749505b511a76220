// Command zerodowntime proves moorage's zero-downtime deploys under a fixed
// request rate: it builds moorage, starts `moorage server` on a temporary
// data dir, deploys examples/hello, then sends a fixed rate of requests
// through the proxy (open loop: latency from each request's intended send
// time) while it deploys the app again and again, each time with a new
// message.txt. Beside the GETs (which the proxy may retry on another
// instance or hold) it sends a stream of POSTs with a body to the app's
// /echo, which the proxy never sends twice once sent, so a failure cannot
// hide behind a retry. It reports every non-2xx answer, transport error and
// unsent request, and the p99 latency of the GETs during the cutover
// windows against the steady state before the first deploy.
//
//	go run ./bench/zerodowntime                       # 20 deploys at 500 GET/s + 50 POST/s
//	go run ./bench/zerodowntime -deploys 3 -rate 200  # quicker
//
// A cutover window is the cutover step (the proxy's atomic route swap) or
// the drain-and-stop step of the old web instances, as the deploy reports
// them, widened by -window-margin on both sides. It exits non-zero when
// a request failed or the cutover p99 exceeds the steady p99 by more than
// -max-p99-delta.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/bench/internal/hello"
	"github.com/moorage/moorage/bench/loadgen"
)

type config struct {
	deploys    int
	rate       float64
	postRate   float64
	postBytes  int
	conns      int
	steady     time.Duration
	maxDelta   time.Duration
	fast       bool
	margin     time.Duration
	keep       bool
	moorageBin string
}

func main() {
	var c config
	flag.IntVar(&c.deploys, "deploys", 20, "consecutive deploys")
	flag.Float64Var(&c.rate, "rate", 500, "GET requests per second through the proxy")
	flag.Float64Var(&c.postRate, "post-rate", 50, "POST requests per second (with a body) through the proxy; 0: none")
	flag.IntVar(&c.postBytes, "post-bytes", 4096, "body size of the POSTs")
	flag.IntVar(&c.conns, "conns", 32, "keep-alive client connections")
	flag.DurationVar(&c.steady, "steady", 20*time.Second, "steady-state measurement before the first deploy")
	flag.DurationVar(&c.maxDelta, "max-p99-delta", 50*time.Millisecond, "largest allowed cutover p99 minus steady p99")
	flag.DurationVar(&c.margin, "window-margin", 500*time.Millisecond, "how far each cutover window extends before and after its steps")
	flag.BoolVar(&c.fast, "fast", true, "shorten the example's monitor window (5s → 1s) and the worker's min_ready (→ 1s)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&c.moorageBin, "moorage", "", "use this moorage binary instead of building one")
	flag.Parse()
	r, err := run(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.markdown(c))
	if !r.ok(c) {
		os.Exit(1)
	}
}

// deploy is one deploy's timeline, from its streamed output.
type deploy struct {
	start, end time.Time
	windows    []window // cutover and drain steps, widened
	output     string
}

type window struct{ from, to time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }

type result struct {
	load    *loadgen.Report
	posts   *loadgen.Report // nil without -post-rate
	deploys []deploy
	loadAt  time.Time // load start
	steady  time.Time // end of the steady phase (first deploy starts)
	dir     string
}

func run(c config) (*result, error) {
	root, err := hello.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := hello.TempDir("moorage-zerodowntime-")
	if err != nil {
		return nil, err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	bin := c.moorageBin
	if bin == "" {
		if bin, err = hello.Build(root, dir); err != nil {
			return nil, err
		}
	}
	app := filepath.Join(dir, "hello")
	if err := hello.Copy(filepath.Join(root, "examples", "hello"), app, c.fast); err != nil {
		return nil, err
	}
	srv, err := hello.Start(bin, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	addr, env := srv.Addr, srv.Env

	deployOnce := func(msg string, margin time.Duration) (deploy, error) {
		if err := os.WriteFile(filepath.Join(app, "message.txt"), []byte(msg+"\n"), 0o644); err != nil {
			return deploy{}, err
		}
		return runDeploy(bin, env, app, margin)
	}
	fmt.Fprintln(os.Stderr, "initial deploy…")
	if d, err := deployOnce("deploy 0", c.margin); err != nil {
		return nil, fmt.Errorf("initial deploy: %w\n%s", err, d.output)
	}
	url := "http://" + addr + "/"
	if err := hello.WaitFor(60*time.Second, func() error {
		res, err := http.Get(url)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	// The load, for the whole run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &result{dir: dir, loadAt: time.Now()}
	var loadErr, postErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		r.load, loadErr = loadgen.Run(ctx, loadgen.Config{
			URL: url, Rate: c.rate, Conns: c.conns, Duration: 24 * time.Hour, Timeout: 30 * time.Second, Samples: true,
		})
	})
	if c.postRate > 0 {
		wg.Go(func() {
			r.posts, postErr = loadgen.Run(ctx, loadgen.Config{
				URL: url + "echo", Rate: c.postRate, Conns: max(c.conns/4, 2), Body: make([]byte, c.postBytes),
				Duration: 24 * time.Hour, Timeout: 30 * time.Second,
			})
		})
	}
	fmt.Fprintf(os.Stderr, "load: %.0f GET/s, %.0f POST/s; steady state for %s…\n", c.rate, c.postRate, c.steady)
	time.Sleep(c.steady)
	r.steady = time.Now()
	for i := 1; i <= c.deploys; i++ {
		d, err := deployOnce(fmt.Sprintf("deploy %d", i), c.margin)
		if err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("deploy %d: %w\n%s", i, err, d.output)
		}
		r.deploys = append(r.deploys, d)
		fmt.Fprintf(os.Stderr, "deploy %d/%d done in %s\n", i, c.deploys, d.end.Sub(d.start).Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	for _, err := range []error{loadErr, postErr} {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	// The last message must be served.
	res, err := http.Get(url)
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), fmt.Sprintf("deploy %d", c.deploys)) {
			return nil, fmt.Errorf("after the last deploy the app answers %q", b)
		}
	}
	return r, nil
}

// runDeploy runs `moorage deploy` and timestamps its streamed step lines to
// find the cutover and drain windows.
func runDeploy(bin string, env []string, app string, margin time.Duration) (deploy, error) {
	d := deploy{start: time.Now()}
	cmd := exec.Command(bin, "deploy", app)
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return d, err
	}
	var out strings.Builder
	var begin time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			now, line := time.Now(), strings.TrimSpace(sc.Text())
			out.WriteString(line + "\n")
			step := strings.Contains(line, "cutover") || strings.Contains(line, "drain")
			switch {
			case step && strings.HasPrefix(line, "→"):
				begin = now
			case step && strings.HasPrefix(line, "✓") && !begin.IsZero():
				d.windows = append(d.windows, window{begin.Add(-margin), now.Add(margin)})
				begin = time.Time{}
			}
		}
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	d.end = time.Now()
	d.output = out.String()
	if err != nil {
		return d, fmt.Errorf("moorage deploy: %w", err)
	}
	if len(d.windows) == 0 {
		// Unknown output format: the whole deploy is the window.
		d.windows = []window{{d.start, d.end}}
	}
	return d, nil
}

func (r *result) ok(c config) bool {
	steady, cut, _ := r.split()
	return r.failed() == 0 && cut.Quantile(0.99)-steady.Quantile(0.99) <= c.maxDelta
}

// failed counts the failed requests, GETs and POSTs.
func (r *result) failed() int64 {
	n := r.load.Failed()
	if r.posts != nil {
		n += r.posts.Failed()
	}
	return n
}

// split sorts the samples into steady state (before the first deploy),
// cutover windows, and the rest of the deploys.
func (r *result) split() (steady, cutover, rest *loadgen.Histogram) {
	steady, cutover, rest = loadgen.NewHistogram(), loadgen.NewHistogram(), loadgen.NewHistogram()
	var ws []window
	for _, d := range r.deploys {
		ws = append(ws, d.windows...)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].from.Before(ws[j].from) })
	for _, s := range r.load.Samples {
		switch {
		case s.Intended.Before(r.steady):
			steady.Record(s.Latency)
		case inAny(ws, s.Intended):
			cutover.Record(s.Latency)
		default:
			rest.Record(s.Latency)
		}
	}
	return steady, cutover, rest
}

func inAny(ws []window, t time.Time) bool {
	i := sort.Search(len(ws), func(i int) bool { return ws[i].from.After(t) })
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		if ws[j].contains(t) {
			return true
		}
	}
	return false
}

func (r *result) markdown(c config) string {
	var b strings.Builder
	steady, cut, rest := r.split()
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
	var cutTime time.Duration
	for _, d := range r.deploys {
		for _, w := range d.windows {
			cutTime += w.to.Sub(w.from)
		}
	}
	fmt.Fprintf(&b, "\n## Zero-downtime deploys: %d deploys of examples/hello at %.0f GET/s and %.0f POST/s\n\n", len(r.deploys), c.rate, c.postRate)
	fmt.Fprintf(&b, "GET /: %d requests in %s, %d transport errors, %d non-2xx answers, %d unsent",
		r.load.Requests, r.load.Elapsed.Round(time.Second), r.load.Errors, r.load.Non2xx, r.load.Unsent)
	var codes []string
	for code, n := range r.load.Statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", n, code))
	}
	sort.Strings(codes)
	fmt.Fprintf(&b, " (statuses: %s)", strings.Join(codes, ", "))
	if r.load.FirstError != "" {
		fmt.Fprintf(&b, "; first error: %s", r.load.FirstError)
	}
	if p := r.posts; p != nil {
		fmt.Fprintf(&b, "\n\nPOST /echo (%d-byte bodies, never retried by the proxy once sent): %d requests, %d transport errors, %d non-2xx answers, %d unsent; latency %s",
			c.postBytes, p.Requests, p.Errors, p.Non2xx, p.Unsent, p.Latency.Summary())
		if p.FirstError != "" {
			fmt.Fprintf(&b, "; first error: %s", p.FirstError)
		}
	}
	fmt.Fprintf(&b, "\n\n| GET phase | requests | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|---|\n")
	row := func(name string, h *loadgen.Histogram) {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", name, h.Count(),
			ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999)), ms(h.Max()))
	}
	row(fmt.Sprintf("steady state (%s before the first deploy)", c.steady), steady)
	row(fmt.Sprintf("cutover windows (%d, %s in all)", len(r.deploys), cutTime.Round(time.Second)), cut)
	row("rest of the deploys (build, start-first, monitor)", rest)
	row("whole run", r.load.Latency)
	delta := cut.Quantile(0.99) - steady.Quantile(0.99)
	fmt.Fprintf(&b, "\ncutover p99 − steady p99 = %s ms (target ≤ %s ms): %s; failed requests: %d (target 0): %s\n",
		ms(delta), ms(c.maxDelta), okMark(delta <= c.maxDelta), r.failed(), okMark(r.failed() == 0))
	return b.String()
}

func okMark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}
