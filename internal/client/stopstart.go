package client

import (
	"context"
	"net/url"

	"github.com/moorage/moorage/internal/api"
)

// StopApp stops app's services (`moorage stop`).
func (c *Client) StopApp(ctx context.Context, app string, req api.StopStartRequest, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/stop", req, fn)
}

// StartApp starts a stopped app (`moorage start`).
func (c *Client) StartApp(ctx context.Context, app string, req api.StopStartRequest, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/start", req, fn)
}
