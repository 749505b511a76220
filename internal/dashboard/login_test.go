package dashboard

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

// fakeAPI answers the control API routes a login uses: every password is
// wrong (after delay, the time a bcrypt takes), and the audit is kept.
type fakeAPI struct {
	delay  time.Duration
	logins atomic.Int64
	mu     sync.Mutex
	audit  []api.AuditEntry
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/dashboard/login":
		f.logins.Add(1)
		time.Sleep(f.delay)
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(api.Error{Error: "wrong user name or password", Code: "unauthorized"})
	case "/v1/dashboard/audit":
		var e api.AuditEntry
		json.NewDecoder(r.Body).Decode(&e)
		f.mu.Lock()
		f.audit = append(f.audit, e)
		f.mu.Unlock()
		w.Write([]byte("{}"))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAPI) audited() []api.AuditEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.AuditEntry(nil), f.audit...)
}

// newLoginDashboard is a dashboard whose control API is f, on a socket.
func newLoginDashboard(t *testing.T, f *fakeAPI) *Dashboard {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{API: c})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// postLogin posts the login form (with a matching CSRF cookie and token)
// from addr.
func postLogin(d *Dashboard, addr, user, password string) *httptest.ResponseRecorder {
	form := url.Values{"user": {user}, "password": {password}, "csrf": {"tok"}}
	r := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: loginCookie, Value: "tok"})
	r.RemoteAddr = addr + ":40000"
	w := httptest.NewRecorder()
	d.Handler().ServeHTTP(w, r)
	return w
}

// TestDashboardConcurrentLogins: concurrent wrong logins from one client
// cannot all pass the limiter before the first failure is counted: at
// most LoginAttempts passwords are checked, the rest get 429.
func TestDashboardConcurrentLogins(t *testing.T) {
	f := &fakeAPI{delay: 200 * time.Millisecond}
	d := newLoginDashboard(t, f)
	d.checkWait = time.Minute // this test is about the limiter, not the queue
	const n = 3 * LoginAttempts
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- postLogin(d, "203.0.113.9", "alice", "wrong password").Code
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if got := f.logins.Load(); got > LoginAttempts {
		t.Errorf("%d passwords checked for %d concurrent logins, want at most %d", got, n, LoginAttempts)
	}
	if count[http.StatusUnauthorized] > LoginAttempts || count[http.StatusTooManyRequests] < n-LoginAttempts {
		t.Errorf("answers %v, want at most %d × 401 and the rest 429", count, LoginAttempts)
	}
}

// TestDashboardLoginChecksBounded: when every password check slot is
// taken, a login waits at most checkWait, then gets 503 with Retry-After,
// and its attempt is given back (it does not count as a failure).
func TestDashboardLoginChecksBounded(t *testing.T) {
	f := &fakeAPI{}
	d := newLoginDashboard(t, f)
	d.checkWait = 50 * time.Millisecond
	for range LoginChecks {
		d.checks <- struct{}{} // password checks in flight
	}
	for range LoginAttempts + 1 {
		w := postLogin(d, "203.0.113.9", "alice", "wrong password")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Fatalf("a login with every check slot taken: %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
	}
	if n := f.logins.Load(); n != 0 {
		t.Fatalf("%d passwords checked beyond the slots", n)
	}
	for range LoginChecks {
		<-d.checks
	}
	if w := postLogin(d, "203.0.113.9", "alice", "wrong password"); w.Code != http.StatusUnauthorized {
		t.Fatalf("with free slots: %d, want 401 (the refused logins did not count as failures)", w.Code)
	}
}

// TestDashboardLoginTooLong: a user name or password longer than any the
// server accepts is refused before the password is checked.
func TestDashboardLoginTooLong(t *testing.T) {
	f := &fakeAPI{}
	d := newLoginDashboard(t, f)
	for _, c := range []struct{ user, password string }{
		{strings.Repeat("a", maxUserLen+1), "wrong password"},
		{"alice", strings.Repeat("p", maxPasswordLen+1)},
		{"alice", strings.Repeat("p", 15<<10)},
	} {
		if w := postLogin(d, "203.0.113.9", c.user, c.password); w.Code != http.StatusBadRequest {
			t.Errorf("user of %d bytes, password of %d: %d, want 400", len(c.user), len(c.password), w.Code)
		}
	}
	if n := f.logins.Load(); n != 0 {
		t.Fatalf("%d over-long passwords were checked", n)
	}
}

// TestDashboardFailedLoginsAudit: wrong logins cannot flood the audit. Of
// one client's failures in a window the audit records the first and the
// one that blocks it, none of the refused ones after; over many clients
// at most AuditFailedLogins per window, the last saying so.
func TestDashboardFailedLoginsAudit(t *testing.T) {
	f := &fakeAPI{}
	d := newLoginDashboard(t, f)
	for range 3 * LoginAttempts {
		postLogin(d, "203.0.113.9", "mallory", "wrong password")
	}
	if w := postLogin(d, "203.0.113.9", "mallory", "wrong password"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", 3*LoginAttempts, w.Code)
	}
	es := f.audited()
	if len(es) != 2 || !strings.Contains(es[0].Outcome, "first failure") || !strings.Contains(es[1].Outcome, "refused until") {
		t.Fatalf("%d wrong logins from one client made %d audit entries, want 2 (its first failure, its block):\n%+v", 3*LoginAttempts+1, len(es), es)
	}
	if es[0].IP != "203.0.113.9" || es[0].User != "mallory" {
		t.Errorf("entry %+v: want mallory from 203.0.113.9", es[0])
	}

	f = &fakeAPI{}
	d = newLoginDashboard(t, f)
	for i := range AuditFailedLogins + 50 {
		postLogin(d, fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), "mallory", "wrong password")
	}
	es = f.audited()
	if len(es) != AuditFailedLogins {
		t.Fatalf("%d clients' wrong logins made %d audit entries, want %d", AuditFailedLogins+50, len(es), AuditFailedLogins)
	}
	if last := es[len(es)-1].Outcome; !strings.Contains(last, "no more are recorded until") {
		t.Errorf("the last entry the budget allows does not say so: %q", last)
	}
}
