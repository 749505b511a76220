package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxyWiring drives the proxy's server-level wiring through the
// binary: `moorage server --metrics ADDR --access-log FILE`, and an
// http.static volume of a deployed app served by the proxy.
func TestProxyWiring(t *testing.T) {
	parallel(t)
	metrics := freePort(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	s := startServerArgs(t, "", []string{"--metrics", metrics, "--access-log", accessLog})
	app := helloApp(t, append(fastSpec,
		"    health: {path: /healthz, interval: 1s}\n",
		"    health: {path: /healthz, interval: 1s}\n    http: {static: {/files/: data}}\n")...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")

	// http.static: the data volume's files at /files/, straight from the
	// volume (the release task wrote migrate.log there).
	want := volumeFile(s, "hello", "migrate.log")
	if want == "" {
		t.Fatal("the release task left no migrate.log in the data volume")
	}
	code, body, err := s.get("/files/migrate.log")
	if err != nil || code != 200 || body != want {
		t.Fatalf("GET /files/migrate.log: %d %q %v, want the volume's %q", code, body, err, want)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/files/migrate.log", nil)
	req.Header.Set("Range", "bytes=0-4")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(part) != want[:5] || res.Header.Get("Etag") == "" || res.Header.Get("Last-Modified") == "" {
		t.Fatalf("range request: %d %q, ETag %q, Last-Modified %q", res.StatusCode, part, res.Header.Get("Etag"), res.Header.Get("Last-Modified"))
	}
	for _, path := range []string{"/files/", "/files/nothing-here", "/files/../moorage.yaml", "/files/%2e%2e/moorage.yaml"} {
		if code, body, err := s.get(path); err != nil || code != 404 {
			t.Errorf("GET %s: %d %q %v, want 404 (no listing, no way out of the volume)", path, code, body, err)
		}
	}
	// The app still answers everything else.
	if code, body, _ := s.get("/env/MOORAGE_SERVICE"); code != 200 || body != "web" {
		t.Fatalf("GET /env/MOORAGE_SERVICE beside the static prefix: %d %q", code, body)
	}

	// A request with an ID of its own, then the access log line it left.
	req, _ = http.NewRequest(http.MethodGet, "http://"+s.http+"/?from=wiring", nil)
	req.Header.Set("X-Request-Id", "e2e-wiring-1")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Request-Id") != "e2e-wiring-1" {
		t.Fatalf("GET /: %d, X-Request-Id %q", res.StatusCode, res.Header.Get("X-Request-Id"))
	}
	type entry struct {
		Time       string   `json:"time"`
		App        string   `json:"app"`
		Method     string   `json:"method"`
		Host       string   `json:"host"`
		Path       string   `json:"path"`
		Status     int      `json:"status"`
		Bytes      int64    `json:"bytes"`
		DurationMS *float64 `json:"duration_ms"`
		Upstream   string   `json:"upstream"`
		RequestID  string   `json:"request_id"`
		Remote     string   `json:"remote"`
	}
	var got, static *entry
	waitFor(t, 30*time.Second, "the access log lines", func() error {
		b, err := os.ReadFile(accessLog)
		if err != nil {
			return err
		}
		got, static = nil, nil
		for _, line := range scanLines(string(b)) {
			var e entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("access log line is not JSON: %q: %v", line, err)
			}
			switch {
			case e.RequestID == "e2e-wiring-1":
				got = &e
			case e.Path == "/files/migrate.log" && e.Status == 200:
				static = &e
			}
		}
		if got == nil || static == nil {
			return fmt.Errorf("request lines not logged yet:\n%s", b)
		}
		return nil
	})
	if got.App != "hello" || got.Method != "GET" || got.Host != s.http || got.Path != "/" || got.Status != 200 ||
		got.Bytes == 0 || got.DurationMS == nil || !strings.HasPrefix(got.Upstream, "hello-web-v1-") || got.Remote != "127.0.0.1" || got.Time == "" {
		t.Errorf("access log line of GET /: %+v", *got)
	}
	if static.App != "hello" || static.Bytes != int64(len(want)) {
		t.Errorf("access log line of the static file: %+v", *static)
	}

	// Metrics: requests by app and status, the latency histogram, the
	// instances' health.
	if n := metric(t, metrics, "moorage_proxy_requests_total", "app=hello", "status=200"); n < 4 {
		t.Errorf("moorage_proxy_requests_total{app=hello,status=200} = %v, want at least 4", n)
	}
	if n := metric(t, metrics, "moorage_proxy_requests_total", "app=hello", "status=404"); n < 4 {
		t.Errorf("moorage_proxy_requests_total{app=hello,status=404} = %v, want at least 4", n)
	}
	if n := metric(t, metrics, "moorage_proxy_request_duration_seconds_count", "app=hello"); n < 8 {
		t.Errorf("moorage_proxy_request_duration_seconds_count{app=hello} = %v, want at least 8", n)
	}
	if n := metric(t, metrics, "moorage_proxy_upstream_healthy", "app=hello", "service=web", "routed=true"); n != 2 {
		t.Errorf("healthy routed web instances of hello: %v, want 2", n)
	}
}
