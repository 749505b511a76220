package client

import (
	"context"
	"net/http"
	"net/url"
)

// Webhook is an app's webhook; Secret is set only when it was just made.
type Webhook struct {
	App    string `json:"app"`
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Secret string `json:"secret,omitempty"`
}

// SetWebhook (re)configures app's webhook with a new secret.
func (c *Client) SetWebhook(ctx context.Context, app, repo, branch string) (*Webhook, error) {
	var out Webhook
	return &out, c.sendJSON(ctx, http.MethodPut, "/v1/apps/"+url.PathEscape(app)+"/webhook", Webhook{Repo: repo, Branch: branch}, &out)
}

// GetWebhook returns app's webhook (without its secret).
func (c *Client) GetWebhook(ctx context.Context, app string) (*Webhook, error) {
	var out Webhook
	return &out, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/webhook", &out)
}
