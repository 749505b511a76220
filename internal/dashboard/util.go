package dashboard

import (
	"net/url"

	"github.com/moorage/moorage/internal/proxy"
)

type proxyCount = proxy.RequestCount

func urlEscape(s string) string { return url.QueryEscape(s) }

func urlPath(s string) string { return url.PathEscape(s) }
