package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/dashboard"
	"github.com/moorage/moorage/internal/spec"
)

// dashboardCertApp is the name the dashboard's host is registered under
// with the certificate manager (no app can have it: app names have no ':').
const dashboardCertApp = "moorage:dashboard"

// startDashboard builds the web dashboard. It reads and acts through the
// control API over the server's own socket, as the CLI does. It is served
// on the socket under /dashboard/ (`moorage dashboard` forwards it over
// ssh), and on the HTTPS listener for Config.DashboardHost.
func (s *Server) startDashboard(apiHandler http.Handler) (http.Handler, error) {
	c, err := client.New("unix://" + s.cfg.Socket)
	if err != nil {
		return nil, err
	}
	d, err := dashboard.New(dashboard.Options{API: c, Logger: s.log.With("component", "dashboard")})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	h := d.Handler()
	s.dashboard.Store(&h)
	s.dashboardClose = d.Close
	mux := http.NewServeMux()
	mux.Handle(dashboard.Prefix, h)
	mux.Handle("/", apiHandler)
	if h := s.cfg.DashboardHost; h != "" {
		if s.certs == nil {
			return nil, fmt.Errorf("--dashboard %s needs HTTPS: drop --https off, or reach the dashboard with `moorage dashboard` over ssh", h)
		}
		mode := s.cfg.DashboardTLS
		if mode == "" {
			mode = spec.TLSAuto
		}
		if err := s.certs.SetApp(dashboardCertApp, []certs.Site{{Service: "dashboard", Hosts: []string{h}, Mode: mode}}); err != nil {
			return nil, fmt.Errorf("--dashboard %s: %w", h, err)
		}
	}
	return mux, nil
}

// dashboardFront serves the dashboard's host before next (the edge): over
// HTTPS the dashboard, over plain HTTP a redirect to HTTPS.
func (s *Server) dashboardFront(next http.Handler, secure bool) http.Handler {
	host := strings.ToLower(s.cfg.DashboardHost)
	if host == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := strings.ToLower(r.Host)
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if h != host {
			next.ServeHTTP(w, r)
			return
		}
		if !secure {
			if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				next.ServeHTTP(w, r) // the edge answers ACME challenges
				return
			}
			target := "https://" + host
			if _, port, err := net.SplitHostPort(s.HTTPSAddr()); err == nil && port != "443" {
				target += ":" + port
			}
			http.Redirect(w, r, target+dashboard.Prefix, http.StatusMovedPermanently)
			return
		}
		if !strings.HasPrefix(r.URL.Path, dashboard.Prefix) {
			http.Redirect(w, r, dashboard.Prefix, http.StatusFound)
			return
		}
		dh := s.dashboard.Load()
		if dh == nil { // the server is still recovering its apps
			w.Header().Set("Retry-After", "2")
			http.Error(w, "moorage is starting: the dashboard is served in a moment", http.StatusServiceUnavailable)
			return
		}
		(*dh).ServeHTTP(w, r)
	})
}
