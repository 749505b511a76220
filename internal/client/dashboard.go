package client

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/moorage/moorage/internal/api"
)

// As returns a client that sends owner as who runs its operations (the
// dashboard: "alice (dashboard)"). It shares c's connections.
func (c *Client) As(owner string) *Client {
	cc := *c
	cc.Owner = owner
	return &cc
}

// PutDashboardUser creates a dashboard user or replaces its role and
// password.
func (c *Client) PutDashboardUser(ctx context.Context, req api.DashboardUserRequest) error {
	return c.sendJSON(ctx, http.MethodPost, "/v1/dashboard/users", req, nil)
}

// DashboardUsers lists the dashboard's users.
func (c *Client) DashboardUsers(ctx context.Context) ([]api.DashboardUser, error) {
	var v []api.DashboardUser
	return v, c.getJSON(ctx, "/v1/dashboard/users", &v)
}

// DeleteDashboardUser removes a dashboard user.
func (c *Client) DeleteDashboardUser(ctx context.Context, name string) error {
	return c.sendJSON(ctx, http.MethodDelete, "/v1/dashboard/users/"+url.PathEscape(name), nil, nil)
}

// DashboardLogin checks a user's password; a wrong one is an *Error with
// Status 401.
func (c *Client) DashboardLogin(ctx context.Context, name, password string) (*api.DashboardUser, error) {
	var u api.DashboardUser
	if err := c.sendJSON(ctx, http.MethodPost, "/v1/dashboard/login", api.DashboardLogin{Name: name, Password: password}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// AddAudit records a dashboard action.
func (c *Client) AddAudit(ctx context.Context, e api.AuditEntry) error {
	return c.sendJSON(ctx, http.MethodPost, "/v1/dashboard/audit", e, nil)
}

// Audit returns the latest dashboard actions, newest first.
func (c *Client) Audit(ctx context.Context, limit int) ([]api.AuditEntry, error) {
	var v []api.AuditEntry
	return v, c.getJSON(ctx, "/v1/dashboard/audit?limit="+strconv.Itoa(limit), &v)
}

// Disk returns the bytes the server's artifacts, logs, backups and volumes
// use.
func (c *Client) Disk(ctx context.Context) (*api.DiskUsage, error) {
	var v api.DiskUsage
	return &v, c.getJSON(ctx, "/v1/server/disk", &v)
}

// DashboardPrefix is where the server's control socket serves the web
// dashboard.
const DashboardPrefix = "/dashboard/"

// DashboardProxy forwards the dashboard's pages (and nothing else of the
// API) to the server over the client's connection: the unix socket, or
// ssh to `moorage dial-stdio`. `moorage dashboard` serves it on loopback.
func (c *Client) DashboardProxy() http.Handler {
	base, _ := url.Parse(c.base)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Host = pr.In.Host // the dashboard's links and cookies use the browser's host
			pr.Out.Header.Del(api.HeaderOwner)
			pr.SetXForwarded()
		},
		Transport:     c.tr,
		FlushInterval: -1, // server-sent events
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, DashboardPrefix, http.StatusFound)
			return
		}
		if !strings.HasPrefix(r.URL.Path, DashboardPrefix) {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// Traffic returns each app's request counts at the proxy since the server
// started.
func (c *Client) Traffic(ctx context.Context) (map[string]api.RequestCount, error) {
	v := map[string]api.RequestCount{}
	return v, c.getJSON(ctx, "/v1/server/traffic", &v)
}

// RuntimesHealth asks the server whether its runtimes answer.
func (c *Client) RuntimesHealth(ctx context.Context) ([]api.RuntimeHealth, error) {
	var v []api.RuntimeHealth
	return v, c.getJSON(ctx, "/v1/server/runtimes", &v)
}
