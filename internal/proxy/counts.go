package proxy

import "github.com/moorage/moorage/internal/api"

// RequestCounts returns every routed app's request counts since the server
// started (the wire's type: the dashboard and its client read it).
func (p *Proxy) RequestCounts() map[string]api.RequestCount {
	p.mu.Lock()
	apps := make([]*appState, 0, len(p.appStates))
	for _, st := range p.appStates {
		apps = append(apps, st)
	}
	p.mu.Unlock()
	out := make(map[string]api.RequestCount, len(apps))
	for _, st := range apps {
		var c api.RequestCount
		for code := range st.metrics.status {
			n := st.metrics.status[code].Load()
			c.Requests += n
			if code >= 500 {
				c.Errors += n
			}
		}
		out[st.name] = c
	}
	return out
}
