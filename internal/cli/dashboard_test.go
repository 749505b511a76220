package cli

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDashboardForwarderHost: the loopback forwarder of `moorage dashboard`
// serves only requests for its own address (DNS rebinding: a page of
// evil.example whose name resolves to 127.0.0.1 sends Host evil.example).
func TestDashboardForwarderHost(t *testing.T) {
	h := loopbackHostOnly("127.0.0.1", 8470, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	for host, want := range map[string]int{
		"localhost:8470":        http.StatusTeapot,
		"LocalHost:8470":        http.StatusTeapot,
		"127.0.0.1:8470":        http.StatusTeapot,
		"[::1]:8470":            http.StatusTeapot,
		"evil.example:8470":     http.StatusMisdirectedRequest,
		"evil.example":          http.StatusMisdirectedRequest,
		"localhost":             http.StatusMisdirectedRequest,
		"localhost:8471":        http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io:8470": http.StatusMisdirectedRequest,
		"":                      http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest("GET", "/dashboard/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
	// The --listen host is accepted too (an IPv6 one in brackets).
	for listen, host := range map[string]string{"127.0.0.2": "127.0.0.2:9000", "::1": "[::1]:9000"} {
		h := loopbackHostOnly(listen, 9000, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		r := httptest.NewRequest("GET", "/dashboard/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("--listen %s, Host %q: %d, want 200", listen, host, w.Code)
		}
	}
}
