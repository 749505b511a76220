package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/api"
)

// TestDashboardStreamEndsOnShutdown: an open event stream does not hold a
// graceful shutdown (or a handover) until its timeout: the server closes
// the dashboard first, which ends the streams at once.
func TestDashboardStreamEndsOnShutdown(t *testing.T) {
	d := newLoginDashboard(t, &fakeAPI{})
	tok, _ := d.ss.create("alice", api.RoleOperator, "")
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/dashboard/events/overview", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("the stream answered %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}

	// As the server does: close the dashboard, then shut down gracefully
	// with a timeout far above what a stream-free shutdown takes.
	const timeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	d.Close()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("the graceful shutdown with an open stream: %v after %s (the stream held it)", err, time.Since(start))
	}
	if took := time.Since(start); took > timeout/2 {
		t.Fatalf("the graceful shutdown took %s with an open stream", took)
	}
}
