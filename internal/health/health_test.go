package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// unhealthy checks that err is a failed check whose message has every want.
func unhealthy(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("healthy, want a failure mentioning %q", want)
	}
	if !errors.Is(err, ErrUnhealthy) {
		t.Errorf("%v does not wrap ErrUnhealthy", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
}

func addrOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

func TestHTTP(t *testing.T) {
	var agent atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent.Store(r.UserAgent())
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("ok"))
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound) // not followed
		case "/elsewhere":
			w.WriteHeader(http.StatusInternalServerError)
		case "/hang":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	addr := addrOf(srv)

	if err := HTTP(nil, addr, "", "/ok", time.Second)(ctx); err != nil {
		t.Errorf("200: %v", err)
	}
	if got := agent.Load(); got != "moorage-health/1" {
		t.Errorf("User-Agent %q", got)
	}
	if err := HTTP(nil, addr, "", "/moved", time.Second)(ctx); err != nil {
		t.Errorf("3xx is healthy, and not followed: %v", err)
	}
	unhealthy(t, HTTP(nil, addr, "", "/healthz", time.Second)(ctx), "GET /healthz", "status 503")
	unhealthy(t, HTTP(nil, addr, "", "/hang", 50*time.Millisecond)(ctx), "GET /hang", "no answer within 50ms (health.timeout)")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	unhealthy(t, HTTP(nil, closed, "", "/healthz", time.Second)(ctx), "GET /healthz", "connection refused")
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	if err := TCP(addr, time.Second)(context.Background()); err != nil {
		t.Errorf("listening: %v", err)
	}
	ln.Close()
	unhealthy(t, TCP(addr, time.Second)(context.Background()), "connect "+addr, "connection refused")
}

// run is how the engine's command check runs: a real command, its exit
// status and its output.
func run(name string, args ...string) func(context.Context) (int, string, error) {
	return func(ctx context.Context) (int, string, error) {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			return ee.ExitCode(), string(out), nil
		}
		if err != nil {
			return -1, string(out), err
		}
		return 0, string(out), nil
	}
}

func TestCommand(t *testing.T) {
	ctx := context.Background()
	if err := Command(5*time.Second, run("true"))(ctx); err != nil {
		t.Errorf("true: %v", err)
	}
	unhealthy(t, Command(5*time.Second, run("sh", "-c", "echo database unreachable; exit 3"))(ctx),
		"exited with status 3", "database unreachable")
	unhealthy(t, Command(50*time.Millisecond, run("sleep", "60"))(ctx), "did not finish within 50ms (health.timeout)")
	unhealthy(t, Command(5*time.Second, run("/no/such/command"))(ctx), "command:")

	// Long output: the end is what explains.
	err := Command(5*time.Second, run("sh", "-c", "yes filler | head -c 5000; echo; echo the real reason; exit 1"))(ctx)
	unhealthy(t, err, "the real reason")
	if len(err.Error()) > 400 {
		t.Errorf("output not trimmed: %d bytes", len(err.Error()))
	}
}

func TestWaitReady(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && n.Add(1) >= 3 {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx := context.Background()

	// Ready on the third check.
	if err := WaitReady(ctx, HTTP(nil, addrOf(srv), "", "/healthz", time.Second), 10*time.Millisecond, time.Minute); err != nil {
		t.Fatalf("becomes healthy: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("%d checks, want 3", got)
	}

	// Never ready: the last failure, how long it waited, what to change.
	err := WaitReady(ctx, HTTP(nil, addrOf(srv), "", "/never", time.Second), 10*time.Millisecond, time.Second)
	unhealthy(t, err, "not ready within 1s (health.start_period", "GET /never", "status 503")

	// Stopped from outside (a crash, the server stopping): no advice.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = WaitReady(cctx, HTTP(nil, addrOf(srv), "", "/never", time.Second), 10*time.Millisecond, time.Minute)
	if err == nil || strings.Contains(err.Error(), "start_period") {
		t.Errorf("cancelled: %v", err)
	}
}

// The probe sends the route's host, so an app that validates Host (Django's
// ALLOWED_HOSTS) answers it; the same client serves repeated checks.
func TestHTTPHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "example.com" {
			http.Error(w, "bad host "+r.Host, http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	unhealthy(t, HTTP(nil, addrOf(srv), "", "/", time.Second)(ctx), "GET /", "status 400")
	c := NewClient()
	for range 2 {
		if err := HTTP(c, addrOf(srv), Host([]string{"*.example.com", "Example.COM."}), "/", time.Second)(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for hosts, want := range map[string]string{"": "", "*.a.test": "", "a.test b.test": "a.test", "::1": "[::1]", "[fe80::1] x.test": "[fe80::1]", "127.0.0.1": "127.0.0.1"} {
		if got := Host(strings.Fields(hosts)); got != want {
			t.Errorf("Host(%q) = %q, want %q", hosts, got, want)
		}
	}
}
