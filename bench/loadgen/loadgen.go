// Package loadgen is a fixed-rate (open-loop) and max-throughput
// (closed-loop) HTTP/1.1 load generator for moorage's benchmarks.
//
// Open loop: request i is due at start + i/rate whether or not earlier ones
// were answered, and its latency is measured from that intended send time, so
// a stall shows up in the latency of every request it delayed (no coordinated
// omission). Closed loop: every connection sends its next request as soon as
// the previous answer arrived, which finds the maximum throughput.
//
// A run cancelled through its context ends its schedule there; in open
// loop the requests already due still go out, for up to Timeout after the
// cancel, and those that could not are counted as unsent (failed), never
// dropped.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes a run.
type Config struct {
	URL      string        // http://host:port/path
	Host     string        // Host header; "" = the URL's host
	Method   string        // default GET (POST when Body is set)
	Body     []byte        // request body, sent with its Content-Length
	Conns    int           // keep-alive connections (default 32)
	Rate     float64       // requests per second; 0 = closed loop (as fast as the connections go)
	Duration time.Duration // measured part of the run (default 10s)
	Warmup   time.Duration // run before measuring (default 0)
	Timeout  time.Duration // per request, including the dial (default 10s)
	// Samples keeps every measured request (for time-windowed analysis).
	Samples bool
	// TLS is the client's TLS config for https:// URLs (nil: DefaultTLS).
	TLS *tls.Config
	// NewConns sends every request on a new connection ("Connection:
	// close"; over https each with a full TLS handshake): the run then
	// measures new connections per second.
	NewConns bool
}

// Sample is one measured request.
type Sample struct {
	Intended time.Time     // when it was due (open loop) or sent (closed loop)
	Latency  time.Duration // from Intended to the end of the response
	Status   int           // 0 on a transport error or unsent
	Err      string        // the transport error, if any; errNotSent when unsent
}

// errNotSent is the Err of an unsent request's Sample.
const errNotSent = "not sent: the run was cancelled while every connection was busy"

// Report is the outcome of a run.
type Report struct {
	Config   Config
	Elapsed  time.Duration // measured wall time
	Requests int64         // measured requests: answered, failed or unsent
	Errors   int64         // transport errors (no response)
	Non2xx   int64         // responses outside 200..299
	// Unsent are open-loop requests that were due before the run was
	// cancelled but could not be sent within Timeout of the cancel (every
	// connection was stuck): their latency is recorded as the wait until
	// they were given up, a lower bound.
	Unsent     int64
	Statuses   map[int]int64
	FirstError string
	Throughput float64 // answered requests per second
	Latency    *Histogram
	Samples    []Sample // when Config.Samples
}

// Failed is the number of requests that did not get a 2xx answer.
func (r *Report) Failed() int64 { return r.Errors + r.Non2xx + r.Unsent }

func (r *Report) String() string {
	mode := "closed loop"
	if r.Config.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f req/s", r.Config.Rate)
	}
	var codes []string
	keys := make([]int, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		codes = append(codes, fmt.Sprintf("%d:%d", k, r.Statuses[k]))
	}
	s := fmt.Sprintf("%s %s, %d conns, %s: %d requests, %.0f req/s, errors %d, non-2xx %d, unsent %d [%s]\n  latency %s",
		mode, r.Config.Method, r.Config.Conns, r.Elapsed.Round(time.Millisecond), r.Requests, r.Throughput, r.Errors, r.Non2xx,
		r.Unsent, strings.Join(codes, " "), r.Latency.Summary())
	if r.FirstError != "" {
		s += "\n  first error: " + r.FirstError
	}
	return s
}

func (c Config) withDefaults() Config {
	if c.Method == "" {
		c.Method = "GET"
		if c.Body != nil {
			c.Method = "POST"
		}
	}
	if c.Conns <= 0 {
		c.Conns = 32
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	return c
}

// worker is one connection's state; its results merge into the Report.
type worker struct {
	cl       *client
	hist     *Histogram
	requests int64
	errors   int64
	non2xx   int64
	unsent   int64
	statuses map[int]int64
	firstErr string
	samples  []Sample
}

func (w *worker) record(cfg *Config, intended time.Time, end time.Time, status int, err error) {
	lat := end.Sub(intended)
	w.requests++
	w.hist.Record(lat)
	s := Sample{Intended: intended, Latency: lat, Status: status}
	if err != nil {
		w.errors++
		s.Status = 0
		s.Err = err.Error()
		if w.firstErr == "" {
			w.firstErr = err.Error()
		}
	} else {
		w.statuses[status]++
		if status < 200 || status > 299 {
			w.non2xx++
		}
	}
	if cfg.Samples {
		w.samples = append(w.samples, s)
	}
}

// recordUnsent records a request that was due at intended and given up at
// end without being sent.
func (w *worker) recordUnsent(cfg *Config, intended, end time.Time) {
	lat := end.Sub(intended)
	w.requests++
	w.unsent++
	w.hist.Record(lat)
	if w.firstErr == "" {
		w.firstErr = errNotSent
	}
	if cfg.Samples {
		w.samples = append(w.samples, Sample{Intended: intended, Latency: lat, Err: errNotSent})
	}
}

// Run runs the load described by cfg until its duration passed or ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	workers := make([]*worker, cfg.Conns)
	for i := range workers {
		cl, err := newClient(u, cfg.Method, cfg.Host, cfg.Body, cfg.Timeout, cfg.TLS, cfg.NewConns)
		if err != nil {
			return nil, err
		}
		workers[i] = &worker{cl: cl, hist: NewHistogram(), statuses: map[int]int64{}}
	}
	defer func() {
		for _, w := range workers {
			w.cl.close()
		}
	}()

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	// cancelled is when ctx ended (Unix ns; 0 while it has not).
	var cancelled atomic.Int64
	stopWatch := context.AfterFunc(ctx, func() { cancelled.Store(time.Now().UnixNano()) })
	defer stopWatch()
	dueAfterCancel := func(t time.Time) bool {
		c := cancelled.Load()
		return c != 0 && t.UnixNano() > c
	}

	var interval time.Duration
	var due chan time.Time // open loop: intended send times, from the pacer
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
		if interval <= 0 {
			return nil, errors.New("loadgen: rate too high")
		}
		// The pacer releases request i at start + i*interval to whichever
		// connection is free; if none is, the request waits, and that wait
		// counts in its latency. It stops at the end of the run, or at the
		// first request not yet due when ctx ended.
		due = make(chan time.Time, 1<<16)
		go func() {
			lockPacerThread()
			defer close(due)
			for i := int64(0); ; i++ {
				t := start.Add(time.Duration(i) * interval)
				if !t.Before(end) || dueAfterCancel(t) {
					return
				}
				sleepUntil(t)
				if dueAfterCancel(t) {
					return
				}
				due <- t
			}
		}()
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for {
				var intended time.Time
				if interval > 0 {
					var ok bool
					if intended, ok = <-due; !ok {
						return
					}
					if c := cancelled.Load(); c != 0 && time.Since(time.Unix(0, c)) > cfg.Timeout {
						// Due before the cancel, and still not sent well
						// after it: counted, not dropped.
						if !intended.Before(measureFrom) {
							w.recordUnsent(&cfg, intended, time.Now())
						}
						continue
					}
				} else {
					if ctx.Err() != nil || !time.Now().Before(end) {
						return
					}
					intended = time.Now()
				}
				status, err := w.cl.do()
				done := time.Now()
				if intended.Before(measureFrom) {
					continue
				}
				if interval == 0 && (done.After(end) || ctx.Err() != nil) {
					return // closed loop: only what finished within the window counts
				}
				w.record(&cfg, intended, done, status, err)
				if err != nil && interval == 0 {
					// Do not spin on a dead server (in open loop the next
					// request is due on its own schedule anyway).
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	// The window: open loop waits for the last due request's answer, which
	// is not part of it; a cancelled ctx ends it early.
	stopAt := time.Now()
	if c := cancelled.Load(); c != 0 {
		stopAt = time.Unix(0, c)
	}
	elapsed := min(max(stopAt.Sub(measureFrom), 0), cfg.Duration)

	r := &Report{Config: cfg, Elapsed: elapsed, Statuses: map[int]int64{}, Latency: NewHistogram()}
	for _, w := range workers {
		r.Requests += w.requests
		r.Errors += w.errors
		r.Non2xx += w.non2xx
		r.Unsent += w.unsent
		for k, v := range w.statuses {
			r.Statuses[k] += v
		}
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
		r.Latency.Merge(w.hist)
		r.Samples = append(r.Samples, w.samples...)
	}
	sort.Slice(r.Samples, func(i, j int) bool { return r.Samples[i].Intended.Before(r.Samples[j].Intended) })
	if elapsed > 0 {
		r.Throughput = float64(r.Requests-r.Errors-r.Unsent) / elapsed.Seconds()
	}
	return r, ctx.Err()
}
