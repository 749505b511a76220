package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	h := NewHistogram()
	var vals []time.Duration
	for range 100000 {
		// Log-uniform from 1µs to 10s.
		v := time.Duration(math.Exp(r.Float64()*math.Log(1e7)) * 1e3)
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("q%.3f = %s, want %s (off by %.2f%%)", q, got, want, 100*rel)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Quantile(1) != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
		t.Fatalf("max %s count %d", h.Max(), h.Count())
	}
	o := NewHistogram()
	o.Record(time.Hour)
	h.Merge(o)
	if h.Max() != time.Hour || h.Count() != uint64(len(vals)+1) {
		t.Fatalf("after merge: max %s count %d", h.Max(), h.Count())
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 40, math.MaxInt64} {
		i := bucketOf(v)
		if mid := uint64(bucketValue(i)); v >= 128 && (float64(mid)-float64(v))/float64(v) > 1.0/128 {
			t.Errorf("bucket of %d has middle %d", v, mid)
		}
	}
}

// TestRun drives the trivial backend in both modes; it checks counts and
// errors, never timing.
func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go Backend(ln, []byte("hi"))
	url := "http://" + ln.Addr().String() + "/"

	r, err := Run(context.Background(), Config{URL: url, Rate: 200, Conns: 4, Duration: 300 * time.Millisecond, Samples: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed() != 0 || r.Requests == 0 || r.Requests > 60 || len(r.Samples) != int(r.Requests) || r.Statuses[200] != r.Requests {
		t.Fatalf("open loop: %s", r)
	}
	for i := 1; i < len(r.Samples); i++ {
		if d := r.Samples[i].Intended.Sub(r.Samples[i-1].Intended); d != 5*time.Millisecond {
			t.Fatalf("intended send times %s apart, want 5ms", d)
		}
	}
	r, err = Run(context.Background(), Config{URL: url, Conns: 2, Duration: 100 * time.Millisecond})
	if err != nil || r.Failed() != 0 || r.Requests == 0 {
		t.Fatalf("closed loop: %v %s", err, r)
	}

	// A dead server: every request is an error, none hangs.
	dead := ln.Addr().String()
	ln.Close()
	r, err = Run(context.Background(), Config{URL: "http://" + dead + "/", Rate: 100, Conns: 2, Duration: 100 * time.Millisecond})
	if err != nil || r.Errors == 0 || r.Errors != r.Requests {
		t.Fatalf("dead server: %v %s", err, r)
	}
}

// stallBackend answers every request at once, except that the request
// numbered stallAt starts a stall: no response at all, on any connection,
// until stall has passed. It records when the stall began and ended (the
// moment before any held response may be written).
type stallBackend struct {
	stallAt int64
	stall   time.Duration

	mu         sync.Mutex
	n          int64
	gate       chan struct{} // closed when the stall ends; nil before it
	start, end time.Time
}

func (b *stallBackend) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 {
						break
					}
				}
				b.mu.Lock()
				b.n++
				if b.n == b.stallAt {
					b.gate, b.start = make(chan struct{}), time.Now()
					gate := b.gate
					time.AfterFunc(b.stall, func() {
						b.mu.Lock()
						b.end = time.Now()
						b.mu.Unlock()
						close(gate)
					})
				}
				gate := b.gate
				b.mu.Unlock()
				if gate != nil {
					<-gate
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
			}
		}()
	}
}

// TestOpenLoopStall: requests due while the backend stalls are not sent
// late and measured from their send (coordinated omission): each one's
// latency is at least the time from its intended send time to the end of
// the stall. A lower bound, so it holds however slow the machine.
func TestOpenLoopStall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b := &stallBackend{stallAt: 20, stall: 200 * time.Millisecond}
	go b.serve(ln)

	r, err := Run(context.Background(), Config{URL: "http://" + ln.Addr().String() + "/", Rate: 200, Conns: 4,
		Duration: 600 * time.Millisecond, Samples: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed() != 0 {
		t.Fatalf("%s", r)
	}
	b.mu.Lock()
	start, end := b.start, b.end
	b.mu.Unlock()
	if start.IsZero() || end.IsZero() {
		t.Fatalf("the backend did not stall (saw %d requests): %s", b.n, r)
	}
	during := 0
	for _, s := range r.Samples {
		if s.Intended.Before(start) || !s.Intended.Before(end) {
			continue
		}
		during++
		if min := end.Sub(s.Intended); s.Latency < min {
			t.Errorf("request due at +%s, %s before the stall ended, measured %s", s.Intended.Sub(start), min, s.Latency)
		}
	}
	if during == 0 {
		t.Fatalf("no request was due during the stall (%s to %s): %s", start.Format("15:04:05.000"), end.Format("15:04:05.000"), r)
	}
	// None went missing: the intended send times follow one another.
	for i := 1; i < len(r.Samples); i++ {
		if d := r.Samples[i].Intended.Sub(r.Samples[i-1].Intended); d != 5*time.Millisecond {
			t.Fatalf("intended send times %s apart, want 5ms", d)
		}
	}
	t.Logf("%d requests due during the %s stall; %s", during, end.Sub(start).Round(time.Millisecond), r)
}

// TestCancelCountsUnsent: requests due before a run is cancelled, which
// could not be sent (every connection waits on a backend that never
// answers), are counted as unsent failures, not dropped.
func TestCancelCountsUnsent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var got atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 {
						got.Add(1) // a request head: never answered
					}
				}
			}()
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type out struct {
		r   *Report
		err error
	}
	ch := make(chan out, 1)
	start := time.Now()
	go func() {
		r, err := Run(ctx, Config{URL: "http://" + ln.Addr().String() + "/", Rate: 200, Conns: 2,
			Duration: time.Hour, Timeout: 300 * time.Millisecond, Samples: true})
		ch <- out{r, err}
	}()
	// Both connections are stuck; wait for requests to pile up behind
	// them (the schedule itself is what makes them due).
	deadline := time.Now().Add(15 * time.Second)
	for got.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the backend never saw both connections' requests")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for time.Since(start) < 200*time.Millisecond {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	o := <-ch
	r := o.r
	if !errors.Is(o.err, context.Canceled) || r == nil {
		t.Fatalf("Run: %v", o.err)
	}
	if r.Unsent == 0 || r.Failed() != r.Requests || r.Requests != r.Errors+r.Unsent || len(r.Samples) != int(r.Requests) {
		t.Fatalf("after a cancel with everything stuck: %s", r)
	}
	// Every request due up to the cancel is accounted for, in order.
	for i, s := range r.Samples {
		if want := r.Samples[0].Intended.Add(time.Duration(i) * 5 * time.Millisecond); !s.Intended.Equal(want) {
			t.Fatalf("sample %d due at %s, want %s", i, s.Intended, want)
		}
	}
	unsent := 0
	for _, s := range r.Samples {
		if s.Err == errNotSent {
			unsent++
		}
	}
	if unsent != int(r.Unsent) || !strings.Contains(r.String(), "unsent") {
		t.Fatalf("%d unsent samples, report says %d: %s", unsent, r.Unsent, r)
	}
	t.Logf("%s", r)
}

// TestHTTPS: over https the generator speaks TLS 1.3 and HTTP/1.1, keeps
// its connections alive, or with NewConns makes a new connection (a full
// handshake) for every request.
func TestHTTPS(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.Version != tls.VersionTLS13 || r.TLS.DidResume || r.ProtoMajor != 1 {
			http.Error(w, "not TLS 1.3 HTTP/1.1 with a full handshake", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	for _, newConns := range []bool{false, true} {
		conns.Store(0)
		r, err := Run(context.Background(), Config{URL: srv.URL, Conns: 2, Duration: 300 * time.Millisecond, NewConns: newConns})
		if err != nil {
			t.Fatal(err)
		}
		if r.Failed() > 0 || r.Requests < 10 {
			t.Fatalf("new conns %v: %d requests, %d failed: %s", newConns, r.Requests, r.Failed(), r.FirstError)
		}
		switch n := conns.Load(); {
		case !newConns && n != 2:
			t.Errorf("keep-alive: %d connections for %d requests, want 2", n, r.Requests)
		case newConns && n < r.Requests:
			t.Errorf("new conns: %d connections for %d requests", n, r.Requests)
		}
	}
}
