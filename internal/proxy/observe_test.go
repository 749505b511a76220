package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialWebSocket opens a WebSocket to host through srv.
func dialWebSocket(t *testing.T, srv *testServer, host string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := srv.tryDial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(conn, "GET /socket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", host, key)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", res, err)
	}
	return conn, br
}

func wsEcho(t *testing.T, conn net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	if err := wsWriteFrame(conn, 0x1, []byte(msg), true); err != nil {
		t.Fatal(err)
	}
	if op, payload, err := wsReadFrame(br); err != nil || op != 0x1 || string(payload) != "echo: "+msg {
		t.Fatalf("echo of %q: %d %q %v", msg, op, payload, err)
	}
}

// TestWebSocketDrain: on cutover, a WebSocket to an old instance stays
// open while the drain runs, and is closed when it ends.
func TestWebSocketDrain(t *testing.T) { schemes(t, testWebSocketDrain) }

func testWebSocketDrain(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	ws := newHandlerBackend(t, wsEchoHandler)
	fresh := newBackend(t, "new")
	route := Route{Hosts: []string{"chat.test"}, Health: HealthCheck{Interval: time.Hour}}
	mustSetApp(t, p, "chat", RouteTargets{Route: route, Targets: []Target{{ID: "old", Addr: ws.Listener.Addr().String()}}})

	// Drain ended by its ctx (the engine gives up waiting).
	conn, br := dialWebSocket(t, srv, "chat.test")
	wsEcho(t, conn, br, "before")
	mustSetApp(t, p, "chat", RouteTargets{Route: route, Targets: []Target{fresh.target()}})
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan int, 1)
	go func() { drained <- p.Drain(ctx, []string{"old"}, time.Hour) }()
	waitFor(t, "Drain to wait on the websocket", func() bool { return p.drainWaiters("old") > 0 })
	wsEcho(t, conn, br, "during the drain") // not cut at cutover
	if _, body := get(t, srv.Client(), srv.URL, "chat.test"); body != "new" {
		t.Fatalf("new requests after the cutover: %q", body)
	}
	cancel()
	if n := <-drained; n != 1 {
		t.Fatalf("Drain: %d in flight, want the websocket", n)
	}
	waitClosed(t, conn, "websocket at the end of the drain")

	// Drain ended by its timeout.
	mustSetApp(t, p, "chat", RouteTargets{Route: route, Targets: []Target{{ID: "old2", Addr: ws.Listener.Addr().String()}}})
	conn2, br2 := dialWebSocket(t, srv, "chat.test")
	wsEcho(t, conn2, br2, "second")
	mustSetApp(t, p, "chat", RouteTargets{Route: route, Targets: []Target{fresh.target()}})
	if n := p.Drain(bg, []string{"old2"}, 100*time.Millisecond); n != 1 {
		t.Fatalf("Drain at its timeout: %d, want 1", n)
	}
	waitClosed(t, conn2, "websocket at the drain timeout")
	if _, ok := statusOf(p, "chat", "old2"); ok {
		t.Fatal("the drained target should be forgotten")
	}
}

func TestMaintenance(t *testing.T) { schemes(t, testMaintenance) }

func testMaintenance(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{RetryAfter: 30 * time.Second}, ServerOptions{})
	b := newBackend(t, "w1")
	route := Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Path: "/up", Interval: time.Hour}}
	// Set before the app has routes (a server restoring its state).
	p.SetMaintenance("shop", &Maintenance{Message: "Back at 14:00 — migrating <data>."})
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b)})

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/anything", nil)
	req.Host = "shop.test"
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "30" || !strings.Contains(string(body), "Back at 14:00 — migrating &lt;data&gt;.") {
		t.Fatalf("maintenance page: %d %v %q", res.StatusCode, res.Header, body)
	}
	if b.hits.Load() != 0 {
		t.Fatal("a request reached the app in maintenance")
	}
	// The health path still reaches the instances.
	if status, body := get(t, srv.Client(), srv.URL+"/up", "shop.test"); status != 200 || body != "up" {
		t.Fatalf("health path in maintenance: %d %q", status, body)
	}
	if m := p.Maintenance("shop"); m == nil || m.Message != "Back at 14:00 — migrating <data>." {
		t.Fatalf("Maintenance(): %+v", m)
	}
	// It survives a cutover; custom HTML replaces the page.
	mustSetApp(t, p, "shop", RouteTargets{Route: route, Targets: targets(b)})
	p.SetMaintenance("shop", &Maintenance{HTML: "<h1>custom</h1>"})
	if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 503 || body != "<h1>custom</h1>" {
		t.Fatalf("custom page: %d %q", status, body)
	}
	// Other apps are not affected; off restores service.
	other := newBackend(t, "o1")
	mustSetApp(t, p, "other", RouteTargets{Route: Route{Hosts: []string{"other.test"}}, Targets: targets(other)})
	if status, body := get(t, srv.Client(), srv.URL, "other.test"); status != 200 || body != "o1" {
		t.Fatalf("another app: %d %q", status, body)
	}
	p.SetMaintenance("shop", nil)
	if status, body := get(t, srv.Client(), srv.URL, "shop.test"); status != 200 || body != "w1" {
		t.Fatalf("after maintenance off: %d %q", status, body)
	}
	if p.Maintenance("shop") != nil {
		t.Fatal("Maintenance() after off")
	}
}

// TestAccessLogAndRequestID checks the JSON access log and X-Request-ID:
// propagated when the client sends a valid one, generated otherwise, seen
// by the app and returned to the client.
func TestAccessLogAndRequestID(t *testing.T) {
	var mu sync.Mutex
	var logBuf bytes.Buffer
	p, srv := newTestProxy(t, Options{AccessLog: lockedWriterFunc(func(b []byte) {
		mu.Lock()
		logBuf.Write(b)
		mu.Unlock()
	})})
	seen := make(chan string, 10)
	up := newHandlerBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("X-Request-ID")
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	})
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{Hosts: []string{"shop.test"}}, Targets: []Target{{ID: "shop-web-1", Addr: up.Listener.Addr().String()}}})

	send := func(method, id string, body io.Reader) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+"/path/x?secret=1", body)
		req.Host = "shop.test"
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res := send(http.MethodGet, "client-id-42", nil)
	if got := <-seen; got != "client-id-42" || res.Header.Get("X-Request-ID") != "client-id-42" {
		t.Fatalf("propagated id: app saw %q, client got %q", got, res.Header.Get("X-Request-ID"))
	}
	res = send(http.MethodPost, "bad id with spaces", strings.NewReader("body"))
	gen := <-seen
	if len(gen) != 32 || gen == "bad id with spaces" || res.Header.Get("X-Request-ID") != gen {
		t.Fatalf("generated id: app saw %q, client got %q", gen, res.Header.Get("X-Request-ID"))
	}
	res = send(http.MethodGet, "", nil)
	if gen2 := <-seen; len(gen2) != 32 || gen2 == gen || res.Header.Get("X-Request-ID") != gen2 {
		t.Fatalf("second generated id %q (first %q)", gen2, gen)
	}
	get(t, srv.Client(), srv.URL, "nobody.test") // 404, no app

	mu.Lock()
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	mu.Unlock()
	if len(lines) != 4 {
		t.Fatalf("%d access log lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	type entry struct {
		Time       time.Time `json:"time"`
		App        string    `json:"app"`
		Method     string    `json:"method"`
		Host       string    `json:"host"`
		Path       string    `json:"path"`
		Status     int       `json:"status"`
		Bytes      int64     `json:"bytes"`
		DurationMS *float64  `json:"duration_ms"`
		Upstream   string    `json:"upstream"`
		RequestID  string    `json:"request_id"`
		Remote     string    `json:"remote"`
	}
	var es []entry
	for _, l := range lines {
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		es = append(es, e)
	}
	want := entry{App: "shop", Method: "GET", Host: "shop.test", Path: "/path/x", Status: 200, Bytes: 5, Upstream: "shop-web-1", RequestID: "client-id-42", Remote: "127.0.0.1"}
	e := es[0]
	if e.App != want.App || e.Method != want.Method || e.Host != want.Host || e.Path != want.Path || e.Status != want.Status ||
		e.Bytes != want.Bytes || e.Upstream != want.Upstream || e.RequestID != want.RequestID || e.Remote != want.Remote ||
		e.DurationMS == nil || e.Time.IsZero() || time.Since(e.Time) > time.Hour {
		t.Fatalf("access log entry %+v, want %+v", e, want)
	}
	if es[1].Method != "POST" || es[1].RequestID != gen {
		t.Fatalf("second entry %+v", es[1])
	}
	if es[3].Status != 404 || es[3].App != "" || es[3].Upstream != "" {
		t.Fatalf("unrouted entry %+v", es[3])
	}
}

type lockedWriterFunc func([]byte)

func (f lockedWriterFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

func TestMetrics(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	b := newBackend(t, "w1")
	mustSetApp(t, p, "shop", RouteTargets{Route: Route{Hosts: []string{"shop.test"}, Health: HealthCheck{Interval: time.Hour}},
		Targets: []Target{b.target(), {ID: "dead", Addr: deadAddr(t)}}})
	for range 5 {
		get(t, srv.Client(), srv.URL, "shop.test")
	}
	get(t, srv.Client(), srv.URL, "nobody.test")
	p.SetMaintenance("shop", &Maintenance{})
	get(t, srv.Client(), srv.URL, "shop.test")

	rec := httptest.NewRecorder()
	p.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	for _, want := range []string{
		"# TYPE moorage_proxy_requests_total counter",
		`moorage_proxy_requests_total{app="shop",status="200"} 5`,
		`moorage_proxy_requests_total{app="shop",status="503"} 1`,
		`moorage_proxy_requests_total{app="",status="404"} 1`,
		"# TYPE moorage_proxy_request_duration_seconds histogram",
		`moorage_proxy_request_duration_seconds_bucket{app="shop",le="+Inf"} 6`,
		`moorage_proxy_request_duration_seconds_count{app="shop"} 6`,
		`moorage_proxy_retries_total{app="shop"} 1`,
		`moorage_proxy_maintenance{app="shop"} 1`,
		`moorage_proxy_upstream_healthy{app="shop",service="web",target="w1",routed="true"} 1`,
		`moorage_proxy_upstream_healthy{app="shop",service="web",target="dead",routed="true"} 0`,
		`moorage_proxy_upstream_in_flight{app="shop",service="web",target="w1"} 0`,
		"moorage_proxy_held_requests 0",
		"moorage_proxy_open_connections ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line is "name{labels} value" or "name value".
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i <= 0 || strings.ContainsAny(l[i+1:], " {}") {
			t.Errorf("malformed sample %q", l)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestAppendJSONString compares the access log's string encoding with
// encoding/json on awkward input.
func TestAppendJSONString(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", `"quoted" \back\slash`, "tab\tnew\nline\r\x00\x1f\x7f", "héllo ☃ 𝄞", "bad \xff\xfe utf8", "</script>"}
	for range 200 {
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		out := appendJSONString(nil, in)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", in, out, err)
		}
		// encoding/json replaces each invalid byte with U+FFFD; so do we.
		exp, _ := json.Marshal(in)
		var want string
		_ = json.Unmarshal(exp, &want)
		if back != want {
			t.Fatalf("%q round-trips to %q, want %q", in, back, want)
		}
	}
}
