package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/moorage/moorage/internal/api"
)

// RegistryLogins lists the server's registry logins (no passwords) and
// the registry it pushes release images to.
func (c *Client) RegistryLogins(ctx context.Context) (*api.RegistryLogins, error) {
	var out api.RegistryLogins
	return &out, c.getJSON(ctx, "/v1/registries", &out)
}

// RegistryLogin stores a registry login (req.Host "" is the server's
// --swarm-registry host). The password travels only in this request's
// body.
func (c *Client) RegistryLogin(ctx context.Context, req api.RegistryLoginRequest) (*api.RegistryLogin, error) {
	var out api.RegistryLogin
	return &out, c.sendJSON(ctx, http.MethodPost, "/v1/registries", req, &out)
}

// RegistryLogout removes the login of host ("" is the server's
// --swarm-registry host).
func (c *Client) RegistryLogout(ctx context.Context, host string) error {
	if host == "" {
		host = "-"
	}
	return c.sendJSON(ctx, http.MethodDelete, "/v1/registries/"+url.PathEscape(host), nil, nil)
}
