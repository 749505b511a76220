package dashboard

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/api"
)

// overviewOf50 is an overview of 50 apps with 6 instances each.
func overviewOf50() *Overview {
	ov := &Overview{At: time.Now()}
	for i := range 50 {
		row := AppRow{Name: fmt.Sprintf("app%02d", i), Runtime: "docker", Active: "v12", State: "running",
			LastDeploy: &api.Deploy{ID: int64(100 + i), App: fmt.Sprintf("app%02d", i), Kind: "deploy", Status: "succeeded", StartedAt: time.Now().Add(-time.Hour)},
			ReqRate:    12.5, ErrRate: 0.1, Requests: 123456, Errors: 12}
		for j := range 6 {
			row.Instances = append(row.Instances, api.InstanceStatus{Instance: api.Instance{
				ID: fmt.Sprintf("app%02d-web-v12-%d", i, j), Service: "web", Index: j + 1, Kind: api.InstanceService,
				State: api.InstanceRunning, Restarts: j}, Health: "healthy"})
		}
		ov.Apps = append(ov.Apps, row)
	}
	return ov
}

func newTestDashboard(t testing.TB) *Dashboard {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// BenchmarkDashboardOverview renders the overview page of 50 apps.
func BenchmarkDashboardOverview(b *testing.B) {
	d := newTestDashboard(b)
	ov := overviewOf50()
	s := &session{user: "alice", role: api.RoleOperator, csrf: "x"}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		d.render(w, 200, "overview", d.newPage(s, "Apps", "apps", ov))
	}
}

// TestDashboardOverviewFast: rendering the overview of 50 apps does a
// bounded amount of work per app. It counts allocations, not wall-clock
// time (which a busy machine makes flaky): about 610 per app now, 1000
// allowed; a render that grew with the square of the apps (or re-parsed a
// template per row) would blow it. The time is BenchmarkDashboardOverview's
// to measure (about 20-25 ms on a busy 2-core VM).
func TestDashboardOverviewFast(t *testing.T) {
	d := newTestDashboard(t)
	ov := overviewOf50()
	s := &session{user: "alice", role: api.RoleOperator, csrf: "x"}
	var body string
	allocs := testing.AllocsPerRun(5, func() {
		w := httptest.NewRecorder()
		d.render(w, 200, "overview", d.newPage(s, "Apps", "apps", ov))
		body = w.Body.String()
	})
	if per := allocs / float64(len(ov.Apps)); per > 1000 {
		t.Errorf("the overview of %d apps took %.0f allocations (%.0f per app), want at most 1000 per app", len(ov.Apps), allocs, per)
	}
	if n := strings.Count(body, `<th scope="row">`); n != 50 {
		t.Errorf("the overview shows %d apps, want 50", n)
	}
}

// TestDashboardTemplatesEscape: what apps, logs, config and the audit
// hold (an app name, a log line, a config key, a failed login's user
// name: all written by someone other than the dashboard's user) comes out
// escaped, in text and in attributes, on every page that shows it. (It
// fails if a template prints one of them unescaped, e.g. through a func
// returning template.HTML.)
func TestDashboardTemplatesEscape(t *testing.T) {
	const evil = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;`
	ov := overviewOf50()
	ov.Apps[0].Name = evil
	ov.Apps[1].Err = evil
	app := &AppPage{Row: ov.Apps[0], Status: &api.AppStatus{Cause: evil},
		ConfigKeys: []ConfigKey{{Key: evil}, {Key: evil, Secret: true}}}
	logs := &LogsPage{App: evil, Service: evil, Filter: evil, Services: []string{evil}, Query: "q=" + evil,
		Lines: []api.LogLine{{Time: time.Now(), Instance: evil, Stream: "stdout", Text: evil}}}
	srv := &ServerPage{Disk: &api.DiskUsage{}, Audit: []api.AuditEntry{{At: time.Now(), User: evil, IP: evil, Action: "login", Target: evil, Outcome: evil}},
		Users: []api.DashboardUser{{Name: evil, Role: api.RoleOperator}}}
	for name, data := range map[string]any{"overview": ov, "app": app, "logs": logs, "server": srv} {
		d := newTestDashboard(t)
		w := httptest.NewRecorder()
		d.render(w, 200, name, d.newPage(&session{user: evil, role: api.RoleOperator, csrf: "x"}, evil, "apps", data))
		b, _ := io.ReadAll(w.Body)
		body := string(b)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", name, w.Code, body)
		}
		for _, raw := range []string{"<script>alert(1)", "<img src=x", `"'><img`} {
			if strings.Contains(body, raw) {
				i := strings.Index(body, raw)
				t.Errorf("%s page: %q is not escaped: ...%s...", name, raw, body[max(0, i-200):min(len(body), i+100)])
			}
		}
		if !strings.Contains(body, escaped) {
			t.Errorf("%s page does not show the hostile value (escaped) at all: the test checks nothing", name)
		}
	}
}

func TestDashboardSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/dashboard/apps/x": "/dashboard/apps/x",
		"//evil.example/":   "/dashboard/",
		"https://evil/":     "/dashboard/",
		"/dashboard/\\evil": "/dashboard/",
		"":                  "/dashboard/",
		"/v1/apps":          "/dashboard/",
	} {
		if got := safeNext("/dashboard", in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDashboardLoginLimiter(t *testing.T) {
	var l limiter
	l.m = map[string]*window{}
	for range LoginAttempts {
		w, _ := l.reserve("1.2.3.4")
		if w == nil {
			t.Fatal("refused too early")
		}
		l.failed(w)
	}
	if w, wait := l.reserve("1.2.3.4"); w != nil || wait <= 0 {
		t.Errorf("allowed after %d failures", LoginAttempts)
	}
	if w, _ := l.reserve("5.6.7.8"); w == nil {
		t.Errorf("another address was refused")
	}
}

// Reserving checks and counts in one step: of many concurrent attempts,
// LoginAttempts get through; a released one (a success) does not count.
func TestDashboardLoginLimiterConcurrent(t *testing.T) {
	var l limiter
	l.m = map[string]*window{}
	var mu sync.Mutex
	var got []*window
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w, _ := l.reserve("1.2.3.4"); w != nil {
				mu.Lock()
				got = append(got, w)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != LoginAttempts {
		t.Fatalf("%d of 50 concurrent attempts got through, want %d", len(got), LoginAttempts)
	}
	l.release(got[0])
	if w, _ := l.reserve("1.2.3.4"); w == nil {
		t.Fatal("a released attempt still counts")
	}
}
