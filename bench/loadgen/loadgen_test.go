package loadgen

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"slices"
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
