package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// result is one request the loader made.
type result struct {
	start, end time.Time
	method     string
	status     int
	body       string
	want       string // POST: the answer must start with this (the body's size and CRC-32)
	err        error
}

// failed reports whether r is a failure: an error, a status other than
// 200, or a POST answer that does not echo the body sent.
func (r result) failed() bool {
	return r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, r.want)
}

// loader sends requests continuously through the proxy from a few
// keep-alive clients, recording every result: GETs, which the proxy may
// retry on another instance or hold, and optionally POSTs with a body to
// examples/hello's /echo, which the proxy never sends twice once sent: a
// POST that fails during a deploy shows as a failure.
type loader struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []result
	started map[int]time.Time // by client: when its request in flight started
}

// startLoader sends GETs of path from workers clients.
func startLoader(addr, path string, workers int) *loader {
	return startMixedLoader(addr, path, workers, 0)
}

// startMixedLoader sends GETs of path from getters clients and POSTs to
// /echo from posters clients, each with a body of 1 to 48 KiB.
func startMixedLoader(addr, path string, getters, posters int) *loader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{cancel: cancel, started: map[int]time.Time{}}
	for i := 0; i < getters+posters; i++ {
		post := i >= getters
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for ctx.Err() == nil {
				r := result{method: http.MethodGet, start: time.Now()}
				var req *http.Request
				if post {
					body := make([]byte, 1<<10+rnd.IntN(47<<10))
					for j := range body {
						body[j] = byte(rnd.Uint32())
					}
					r.method = http.MethodPost
					r.want = fmt.Sprintf("received=%d crc32=%08x ", len(body), crc32.ChecksumIEEE(body))
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/echo", bytes.NewReader(body))
				} else {
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
				}
				l.mu.Lock()
				l.started[i] = r.start
				l.mu.Unlock()
				resp, err := c.Do(req)
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.status, r.body, r.err = resp.StatusCode, string(b), rerr
				} else {
					r.err = err
				}
				r.end = time.Now()
				l.mu.Lock()
				delete(l.started, i)
				l.mu.Unlock()
				if ctx.Err() != nil && r.err != nil {
					return // cancelled by stop, not a failure
				}
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond) // pace: ~hundreds of requests/s, leaves CPU for the deploys
			}
		}()
	}
	return l
}

// stop ends the load and returns every result.
func (l *loader) stop() []result {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

// inFlightSince returns when the oldest request in flight started (zero
// when none is): stop cancels those, and they are not counted.
func (l *loader) inFlightSince() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest time.Time
	for _, at := range l.started {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	return oldest
}

// count returns how many requests were made so far.
func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

// failures returns a description of every failed result.
func failures(rs []result) []string {
	var out []string
	for _, r := range rs {
		if r.failed() {
			out = append(out, fmt.Sprintf("%s %s: status %d err %v body %q", r.start.Format("15:04:05.000"), r.method, r.status, r.err, strings.TrimSpace(r.body)))
		}
	}
	return out
}

// countMethods returns how many results used each method.
func countMethods(rs []result) map[string]int {
	n := map[string]int{}
	for _, r := range rs {
		n[r.method]++
	}
	return n
}

// metric scrapes a Prometheus text endpoint (moorage server --metrics) and
// returns the sum of the samples of name whose labels include every
// "k=v" in labels.
func metric(t testing.TB, addr, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape metrics: status %d", resp.StatusCode)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series := line[:i]
		ok := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(series, k+`="`+v+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		t.Fatalf("no %s%v in the metrics", name, labels)
	}
	return sum
}
