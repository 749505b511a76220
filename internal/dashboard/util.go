package dashboard

import (
	"net/url"

	"github.com/moorage/moorage/internal/api"
)

type proxyCount = api.RequestCount

func urlEscape(s string) string { return url.QueryEscape(s) }

func urlPath(s string) string { return url.PathEscape(s) }
