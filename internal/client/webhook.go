package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/moorage/moorage/internal/api"
)

// Webhook is an app's webhook; Secret is set only when it was just made.
type Webhook = api.Webhook

// SetWebhook (re)configures app's webhook with a new secret; an ssh
// repository's deploy key is kept unless newKey.
func (c *Client) SetWebhook(ctx context.Context, app, repo, branch string, newKey bool) (*Webhook, error) {
	var out Webhook
	return &out, c.sendJSON(ctx, http.MethodPut, "/v1/apps/"+url.PathEscape(app)+"/webhook", Webhook{Repo: repo, Branch: branch, NewDeployKey: newKey}, &out)
}

// GetWebhook returns app's webhook (without its secret).
func (c *Client) GetWebhook(ctx context.Context, app string) (*Webhook, error) {
	var out Webhook
	return &out, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/webhook", &out)
}
