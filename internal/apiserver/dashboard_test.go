package apiserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A login with a name or password longer than any user can have is
// refused before the store is read or a hash computed (this Server has no
// engine: reading the store would panic).
func TestDashboardLoginTooLong(t *testing.T) {
	s := &Server{}
	for _, body := range []string{
		`{"name":"` + strings.Repeat("a", 65) + `","password":"wrong password"}`,
		`{"name":"alice","password":"` + strings.Repeat("p", 73) + `"}`,
	} {
		w := httptest.NewRecorder()
		s.dashboardLogin(w, httptest.NewRequest("POST", "/v1/dashboard/login", strings.NewReader(body)))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%.40s...: %d, want 401", body, w.Code)
		}
	}
}
