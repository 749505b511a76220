package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/moorage/moorage/internal/api"
)

// Notifiers lists app's notifiers (its own and the server-wide ones), or
// every notifier when app is "".
func (c *Client) Notifiers(ctx context.Context, app string) ([]api.Notifier, error) {
	var out []api.Notifier
	q := ""
	if app != "" {
		q = "?app=" + url.QueryEscape(app)
	}
	return out, c.getJSON(ctx, "/v1/notifiers"+q, &out)
}

// AddNotifier adds a notifier of app ("" = every app of the server).
func (c *Client) AddNotifier(ctx context.Context, app string, t api.NotifierTarget) (*api.Notifier, error) {
	var out api.Notifier
	body := map[string]any{"app": app, "target": t}
	return &out, c.sendJSON(ctx, http.MethodPost, "/v1/notifiers", body, &out)
}

// RemoveNotifier removes notifier id.
func (c *Client) RemoveNotifier(ctx context.Context, id int64) error {
	return c.sendJSON(ctx, http.MethodDelete, fmt.Sprintf("/v1/notifiers/%d", id), nil, nil)
}

// TestNotifier sends a test notification through notifier id now.
func (c *Client) TestNotifier(ctx context.Context, id int64) error {
	return c.sendJSON(ctx, http.MethodPost, fmt.Sprintf("/v1/notifiers/%d/test", id), nil, nil)
}
