package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mediacmsComposeBench is the overlay docker-compose needs to run the
// MediaCMS-shaped project on one engine: one web replica (compose v1
// cannot run two on one published port), and the app's services run as
// root, since a fresh compose volume is root's (moorage hands it to the
// image's user). The HTTPS overlay is not used: its nginx-proxy and
// acme-companion images need a registry.
const mediacmsComposeBench = `services:
  migrate: {user: "0:0"}
  web: {user: "0:0", deploy: {replicas: 1}}
  celery_beat: {user: "0:0"}
  celery_short: {user: "0:0"}
  celery_long: {user: "0:0"}
`

// BenchmarkComposeUpMediaCMS is the side-by-side figure of
// docs/benchmarks.md: the MediaCMS-shaped project of
// TestComposeMediaCMSShapeOnDocker, run by docker-compose (v1, `up -d
// --build`) on the machine's engine, updated MOORAGE_BENCH_UPDATES times
// (default 3: a new message.txt and custom/) while the loader of the e2e
// tests (4 keep-alive clients, GET /, 2 ms apart) sends requests to the
// published port. It reports every update's requests and failures; b.N is
// not used (run it with -benchtime 1x):
//
//	MOORAGE_REQUIRE_DOCKER=1 go test -run XXX -bench ComposeUpMediaCMS -benchtime 1x -timeout 30m -v ./e2e/
func BenchmarkComposeUpMediaCMS(b *testing.B) {
	requireCelery(b)
	pgBin(b)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		b.Fatal("needs docker-compose (apt-get install docker-compose: 1.29.2 on Debian 12)")
	}
	updates := 3
	if v := os.Getenv("MOORAGE_BENCH_UPDATES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("MOORAGE_BENCH_UPDATES=%q: want a count", v)
		}
		updates = n
	}
	s := &server{runtime: "docker"}
	dir := mediacmsProject(b, s)
	addr := freePort(b)
	_, port, _ := strings.Cut(addr, ":")
	// The published port: a free one rather than the machine's 80; and
	// no top-level name, which compose v1 refuses (-p names the project).
	compose := filepath.Join(dir, "docker-compose.yml")
	c, err := os.ReadFile(compose)
	if err != nil {
		b.Fatal(err)
	}
	edited := strings.NewReplacer(`ports: ["80:8080"]`, `ports: ["127.0.0.1:`+port+`:8080"]`, "name: mediacms\n", "").Replace(string(c))
	if err := os.WriteFile(compose, []byte(edited), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.bench.yml"), []byte(mediacmsComposeBench), 0o644); err != nil {
		b.Fatal(err)
	}
	project := fmt.Sprintf("mcbench%d", time.Now().UnixNano()%1e6)
	dc := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f", "docker-compose.yml", "-f", "docker-compose.bench.yml"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	b.Cleanup(func() {
		if out, err := dc("down", "-v", "--rmi", "local", "--timeout", "5"); err != nil {
			b.Logf("docker-compose down: %v\n%s", err, out)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	serves := func(msg string) {
		b.Helper()
		waitFor(b, 5*time.Minute, "the published port to serve "+msg, func() error {
			r, err := client.Get("http://" + addr + "/")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || !strings.Contains(string(body), "message="+msg+" ") {
				return fmt.Errorf("status %d body %q", r.StatusCode, body)
			}
			return nil
		})
	}
	setMessage(b, dir, "compose 0")
	began := time.Now()
	if out, err := dc("up", "-d", "--build"); err != nil {
		b.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	serves("compose 0")
	b.Logf("first up serving after %s", time.Since(began).Round(time.Millisecond))

	total, failed := 0, 0
	for i := 1; i <= updates; i++ {
		msg := fmt.Sprintf("compose %d", i)
		setMessage(b, dir, msg)
		if err := os.WriteFile(filepath.Join(dir, "custom/static/motd.txt"), []byte(fmt.Sprintf("custom %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		l := startLoader(addr, "/", 4)
		start := time.Now()
		out, err := dc("up", "-d", "--build")
		if err != nil {
			l.stop()
			b.Fatalf("docker-compose up (update %d): %v\n%s", i, err, out)
		}
		upDone := time.Since(start)
		serves(msg)
		serving := time.Since(start)
		rs := l.stop()
		f := failures(rs)
		var first, last time.Time
		for _, r := range rs {
			if r.failed() {
				if first.IsZero() {
					first = r.start
				}
				last = r.end
			}
		}
		window := time.Duration(0)
		if !first.IsZero() {
			window = last.Sub(first)
		}
		b.Logf("update %d: up -d --build returned after %s, new message served after %s; %d requests, %d failed (%.0f%%), failures over %s",
			i, upDone.Round(time.Millisecond), serving.Round(time.Millisecond), len(rs), len(f), 100*float64(len(f))/float64(max(len(rs), 1)), window.Round(time.Millisecond))
		if len(f) > 0 {
			b.Logf("first failure: %s", f[0])
		}
		total += len(rs)
		failed += len(f)
	}
	b.Logf("docker-compose up -d --build, %d updates: %d requests, %d failed", updates, total, failed)
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(float64(total), "requests")
}
