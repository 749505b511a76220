package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/bench/loadgen"
)

// TestZeroDowntimeFixedRate is the short version of bench/zerodowntime: a
// fixed 200 requests/s through the proxy (open loop, so a stall cannot hide
// behind a waiting client) across 3 consecutive deploys of examples/hello
// records no transport error and no non-2xx answer.
func TestZeroDowntimeFixedRate(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	app := helloApp(t, fastSpec...)
	setMessage(t, app, "rate 0")
	s.deploy(app, 0)
	s.waitBody("/", "message=rate 0")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg     sync.WaitGroup
		report *loadgen.Report
		err    error
	)
	wg.Go(func() {
		report, err = loadgen.Run(ctx, loadgen.Config{
			URL: "http://" + s.http + "/", Rate: 200, Conns: 16,
			Duration: time.Hour, Timeout: 30 * time.Second, Samples: true,
		})
	})
	const n = 3
	for i := 1; i <= n; i++ {
		setMessage(t, app, fmt.Sprintf("rate %d", i))
		s.deploy(app, 0)
	}
	s.waitBody("/", fmt.Sprintf("message=rate %d", n))
	cancel()
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	if report.Requests < 200 {
		t.Fatalf("only %d requests were made", report.Requests)
	}
	if report.Failed() > 0 {
		for _, smp := range report.Samples {
			if smp.Err != "" || smp.Status < 200 || smp.Status > 299 {
				t.Errorf("%s: status %d %s", smp.Intended.Format("15:04:05.000"), smp.Status, smp.Err)
			}
		}
		t.Fatalf("%d of %d requests failed across %d deploys", report.Failed(), report.Requests, n)
	}
	t.Logf("%s", report)
}
