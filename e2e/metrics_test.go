package e2e

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsBeyondTheProxy scrapes `moorage server --metrics` after a real
// deploy, a backup and its verification, a TLS handshake and a crashed
// instance, and finds each in moorage's own metrics.
func TestMetricsBeyondTheProxy(t *testing.T) {
	parallel(t)
	addr := freePort(t)
	s := startServerArgs(t, "", []string{"--metrics", addr})
	app := helloApp(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}",
		"    health: {path: /healthz, interval: 1s}\n    http: {hosts: [127.0.0.1], tls: internal}")...)
	start := time.Now()
	s.deploy(app, 0)

	if v := metric(t, addr, "moorage_deploys_total", "app=hello", "kind=deploy", "status=succeeded"); v != 1 {
		t.Errorf("moorage_deploys_total{status=succeeded} = %v after one deploy, want 1", v)
	}
	for _, step := range []string{"build", "release"} {
		if v := metric(t, addr, "moorage_deploy_step_duration_seconds_count", "app=hello", "step="+step); v < 1 {
			t.Errorf("no %s step timed: count %v", step, v)
		}
	}
	if v := metric(t, addr, "moorage_deploy_duration_seconds_sum", "app=hello", "status=succeeded"); v <= 0 || v > time.Since(start).Seconds() {
		t.Errorf("deploy duration %v s, the deploy took at most %s", v, time.Since(start))
	}
	if v := metric(t, addr, "moorage_deploy_last_status", "app=hello", "status=succeeded"); v != 1 {
		t.Errorf("moorage_deploy_last_status{status=succeeded} = %v", v)
	}

	// A backup: its age, unverified, then verified.
	s.mustRun("backup", "create", "-a", "hello", "--volume", "data")
	if v := metric(t, addr, "moorage_backup_last_success_verified", "app=hello", "target=data"); v != 0 {
		t.Errorf("an unverified backup counts as verified: %v", v)
	}
	if age := metric(t, addr, "moorage_backup_last_success_age_seconds", "app=hello", "target=data"); age < 0 || age > time.Since(start).Seconds() {
		t.Errorf("backup age %v s", age)
	}
	ids := backupIDs(t, s, "hello")
	s.mustRun("backup", "verify", "-a", "hello", ids[0])
	if v := metric(t, addr, "moorage_backup_last_success_verified", "app=hello", "target=data"); v != 1 {
		t.Errorf("a verified backup: moorage_backup_last_success_verified = %v", v)
	}

	// The internal certificate is issued at the first handshake.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(s.mustRun("server", "ca")))
	c := tlsClient(roots, s.https)
	waitFor(t, 30*time.Second, "HTTPS", func() error {
		r, err := c.Get("https://127.0.0.1/")
		if err != nil {
			return err
		}
		r.Body.Close()
		return nil
	})
	left := metric(t, addr, "moorage_certificate_expires_in_seconds", "app=hello", "mode=internal")
	if left <= 0 || left > 400*24*3600 {
		t.Errorf("certificate expires in %v s", left)
	}

	// A crashed web instance is restarted: both counted.
	var pid int
	for _, in := range s.ps("hello").Instances {
		if in.Service == "web" && in.PID > 0 {
			pid = in.PID
			break
		}
	}
	if pid == 0 {
		t.Fatal("no web instance pid in ps")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 60*time.Second, "the crash and restart to be counted", func() error {
		out := scrapeText(t, addr)
		if !strings.Contains(out, `moorage_instance_crashes_total{app="hello",service="web"} 1`) ||
			!strings.Contains(out, `moorage_instance_restarts_total{app="hello",service="web"} 1`) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	// The proxy's metrics are still there, in the same scrape.
	if v := metric(t, addr, "moorage_proxy_requests_total", "app=hello"); v < 1 {
		t.Errorf("proxy requests %v", v)
	}
}

func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
