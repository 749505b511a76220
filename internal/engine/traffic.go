package engine

import "github.com/moorage/moorage/internal/api"

// Traffic returns each app's request counts at the proxy since the server
// started.
func (e *Engine) Traffic() map[string]api.RequestCount {
	return e.proxy.RequestCounts()
}
