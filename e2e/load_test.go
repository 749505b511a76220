package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// result is one request the loader made.
type result struct {
	start, end time.Time
	status     int
	body       string
	err        error
}

// loader sends GET requests continuously through the proxy from a few
// keep-alive clients, recording every result.
type loader struct {
	url     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []result
}

func startLoader(addr, path string, workers int) *loader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{url: "http://" + addr + path, cancel: cancel}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for ctx.Err() == nil {
				r := result{start: time.Now()}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
				resp, err := c.Do(req)
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.status, r.body, r.err = resp.StatusCode, string(b), rerr
				} else {
					r.err = err
				}
				r.end = time.Now()
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

// count returns how many requests were made so far.
func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

// failures returns a description of every non-200 result.
func failures(rs []result) []string {
	var out []string
	for _, r := range rs {
		if r.err != nil || r.status != 200 {
			out = append(out, fmt.Sprintf("%s: status %d err %v body %q", r.start.Format("15:04:05.000"), r.status, r.err, strings.TrimSpace(r.body)))
		}
	}
	return out
}
