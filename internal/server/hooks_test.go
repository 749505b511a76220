package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func hookRequest() *http.Request {
	r := httptest.NewRequest("POST", "/hooks/web", strings.NewReader("{}"))
	r.Header.Set("X-Hub-Signature-256", "sha256=00")
	return r
}

// TestHooksStopBeforeStore: when the server stops or hands over, webhooks
// stop before the engine and the store they use: the ones in flight are
// waited for, later ones get 503 with Retry-After (to be redelivered to
// the next server) instead of an error from a closed store; other
// requests still reach the edge.
func TestHooksStopBeforeStore(t *testing.T) {
	s := &Server{}
	entered, release := make(chan struct{}), make(chan struct{})
	hooks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hooks/") {
			close(entered)
			<-release // a webhook being served
		}
		w.WriteHeader(http.StatusAccepted)
	})
	inFlight := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		s.serveHook(hooks, w, hookRequest())
		inFlight <- w.Code
	}()
	<-entered
	stopped := make(chan struct{})
	go func() {
		s.stopHooks(context.Background())
		close(stopped)
	}()
	// Webhooks are off at once (stopHooks sets the flag before it waits).
	deadline := time.Now().Add(10 * time.Second)
	for !s.hooksOff.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-stopped:
		t.Fatal("stopHooks returned with a webhook in flight")
	default:
	}
	w := httptest.NewRecorder()
	s.serveHook(hooks, w, hookRequest())
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a webhook while stopping: %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	w = httptest.NewRecorder()
	s.serveHook(hooks, w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusAccepted {
		t.Fatalf("an app's request while stopping: %d, want it served", w.Code)
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stopHooks did not return once the webhook in flight ended")
	}
	if code := <-inFlight; code != http.StatusAccepted {
		t.Fatalf("the webhook in flight: %d, want it served to its end", code)
	}
}
