package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// shutdownTimeout bounds how long in-flight requests may take after SIGTERM.
const shutdownTimeout = 30 * time.Second

// runWeb serves HTTP on 0.0.0.0:$PORT until SIGTERM, then stops accepting,
// lets in-flight requests finish (up to 30s) and returns.
func runWeb(ctx context.Context, e *env, log *slog.Logger) error {
	msg, err := os.ReadFile("message.txt")
	if err != nil {
		return fmt.Errorf("read message.txt from the working directory: %w", err)
	}
	if err := e.ensureDataDir(); err != nil {
		log.Warn("no data directory, /jobs will report errors", "err", err)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	a := &webApp{env: e, log: log, message: strings.TrimSpace(string(msg))}
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("web listening", "addr", ln.Addr().String(), "message", a.message, "unhealthy", e.unhealthy)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections, draining in-flight requests",
		"in_flight", a.inflight.Load(), "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("web stopped")
	return nil
}

// webApp holds the state of the web handlers.
type webApp struct {
	env      *env
	log      *slog.Logger
	message  string       // message.txt, read once at startup
	inflight atomic.Int64 // requests being served
	served   atomic.Int64 // GET / answered
}

func (a *webApp) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /env/{name}", a.envVar)
	mux.HandleFunc("GET /slow", a.slow)
	mux.HandleFunc("GET /jobs", a.jobs)
	mux.HandleFunc("GET /inflight", a.inflightCount)
	mux.HandleFunc("POST /echo", a.echo)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inflight.Add(1)
		defer a.inflight.Add(-1)
		if !a.hostAllowed(r.Host) {
			text(w, http.StatusBadRequest, fmt.Sprintf("Invalid HTTP_HOST header: %q is not in HELLO_ALLOWED_HOSTS\n", r.Host))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// hostAllowed is Django's ALLOWED_HOSTS check: with HELLO_ALLOWED_HOSTS set,
// only those host names (port ignored) are served, health checks included.
func (a *webApp) hostAllowed(host string) bool {
	if len(a.env.allowedHosts) == 0 {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range a.env.allowedHosts {
		if h == host {
			return true
		}
	}
	return false
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}

// index answers "release=<release> message=<message> instance=<instance>\n".
// With HELLO_CRASH_AFTER_REQUESTS=N, the Nth answer is the last: the process
// exits with status 3 once it is sent. Health checks do not count, so a
// release crashes only once real traffic reaches it (after a cutover).
// HELLO_UNHEALTHY_AFTER_REQUESTS=N is the same without the crash: from the
// Nth answer on, /healthz answers 503 and the process lives on.
func (a *webApp) index(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, fmt.Sprintf("release=%s message=%s instance=%s\n", a.env.release, a.message, a.env.instance))
	served := a.served.Add(1)
	if n := a.env.sickServed; n > 0 && served == int64(n) {
		a.log.Warn("turning unhealthy on purpose", "reason", "HELLO_UNHEALTHY_AFTER_REQUESTS", "after", n)
	}
	if n := a.env.crashServed; n > 0 && served == int64(n) {
		_ = http.NewResponseController(w).Flush()
		a.log.Error("crashing on purpose", "reason", "HELLO_CRASH_AFTER_REQUESTS", "after", n, "exit_status", 3)
		os.Exit(3)
	}
}

// healthz answers 200 "ok", or 503 forever with HELLO_UNHEALTHY=1, or from
// the HELLO_UNHEALTHY_AFTER_REQUESTS-th GET / on.
func (a *webApp) healthz(w http.ResponseWriter, _ *http.Request) {
	if a.env.unhealthy {
		text(w, http.StatusServiceUnavailable, "unhealthy: HELLO_UNHEALTHY=1\n")
		return
	}
	if n := a.env.sickServed; n > 0 && a.served.Load() >= int64(n) {
		text(w, http.StatusServiceUnavailable, "unhealthy: HELLO_UNHEALTHY_AFTER_REQUESTS="+strconv.Itoa(n)+"\n")
		return
	}
	text(w, http.StatusOK, "ok")
}

// envVar answers the value of an environment variable, or 404 when unset.
func (a *webApp) envVar(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := os.LookupEnv(name)
	if !ok {
		text(w, http.StatusNotFound, fmt.Sprintf("%s is not set\n", name))
		return
	}
	text(w, http.StatusOK, v)
}

// slow sleeps ?ms=N milliseconds, then answers 200.
func (a *webApp) slow(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 {
		text(w, http.StatusBadRequest, "want ?ms=N with N >= 0\n")
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return // the client went away
	}
	text(w, http.StatusOK, fmt.Sprintf("slept ms=%d release=%s instance=%s\n", ms, a.env.release, a.env.instance))
}

// jobs answers {"queued": N, "done": M}.
func (a *webApp) jobs(w http.ResponseWriter, _ *http.Request) {
	queued, err := jobFiles(a.env.data(queueDir))
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	done, err := jobFiles(a.env.data(doneDir))
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int{"queued": len(queued), "done": len(done)})
}

// maxEcho is the largest body POST /echo reads.
const maxEcho = 1 << 20

// echo reads the request body (up to 1 MiB) and answers its size and
// CRC-32: "received=<bytes> crc32=<hex> release=<release> instance=<instance>\n".
// A client can tell a whole body from a cut one; tests send POSTs, which
// the proxy never sends twice, through deploys with it.
func (a *webApp) echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEcho))
	if err != nil {
		text(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("read body: %v (at most %d bytes)\n", err, maxEcho))
		return
	}
	text(w, http.StatusOK, fmt.Sprintf("received=%d crc32=%08x release=%s instance=%s\n",
		len(b), crc32.ChecksumIEEE(b), a.env.release, a.env.instance))
}

// inflightCount answers how many other requests are being served right now
// (tests use it to know a /slow request has arrived before they SIGTERM).
func (a *webApp) inflightCount(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, fmt.Sprintf("%d\n", a.inflight.Load()-1))
}
