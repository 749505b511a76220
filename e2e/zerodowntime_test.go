package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/bench/loadgen"
)

// TestZeroDowntimeFixedRate is the short version of bench/zerodowntime: a
// fixed 200 GETs/s and 50 POSTs/s (with a body, never sent twice by the
// proxy) through the proxy (open loop, so a stall cannot hide behind a
// waiting client) across 3 consecutive deploys of examples/hello record no
// transport error and no non-2xx answer.
func TestZeroDowntimeFixedRate(t *testing.T) {
	parallel(t)
	metrics := freePort(t)
	s := startServerArgs(t, "", []string{"--metrics", metrics})
	app := helloApp(t, fastSpec...)
	setMessage(t, app, "rate 0")
	s.deploy(app, 0)
	s.waitBody("/", "message=rate 0")
	retriesBefore := metric(t, metrics, "moorage_proxy_retries_total", "app=hello")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loads := []loadgen.Config{
		{URL: "http://" + s.http + "/", Rate: 200, Conns: 16},
		{URL: "http://" + s.http + "/echo", Rate: 50, Conns: 8, Body: bytes.Repeat([]byte("moorage "), 512)},
	}
	reports := make([]*loadgen.Report, len(loads))
	errs := make([]error, len(loads))
	var wg sync.WaitGroup
	for i, cfg := range loads {
		cfg.Duration, cfg.Timeout, cfg.Samples = time.Hour, 30*time.Second, true
		wg.Go(func() { reports[i], errs[i] = loadgen.Run(ctx, cfg) })
	}
	const n = 3
	for i := 1; i <= n; i++ {
		setMessage(t, app, fmt.Sprintf("rate %d", i))
		s.deploy(app, 0)
	}
	s.waitBody("/", fmt.Sprintf("message=rate %d", n))
	cancel()
	wg.Wait()
	for i, report := range reports {
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			t.Fatal(errs[i])
		}
		if min := int64(loads[i].Rate); report.Requests < min {
			t.Fatalf("only %d requests were made: %s", report.Requests, report)
		}
		if report.Failed() > 0 {
			for _, smp := range report.Samples {
				if smp.Err != "" || smp.Status < 200 || smp.Status > 299 {
					t.Errorf("%s %s: status %d %s", report.Config.Method, smp.Intended.Format("15:04:05.000"), smp.Status, smp.Err)
				}
			}
			t.Fatalf("%d of %d requests failed across %d deploys: %s", report.Failed(), report.Requests, n, report)
		}
		t.Logf("%s", report)
	}
	t.Logf("the proxy retried %.0f requests on another instance", metric(t, metrics, "moorage_proxy_retries_total", "app=hello")-retriesBefore)
}
