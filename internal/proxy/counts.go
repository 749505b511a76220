package proxy

// RequestCount is an app's answered requests since the server started.
type RequestCount struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"` // answered with a 5xx status
}

// RequestCounts returns every routed app's request counts.
func (p *Proxy) RequestCounts() map[string]RequestCount {
	p.mu.Lock()
	apps := make([]*appState, 0, len(p.appStates))
	for _, st := range p.appStates {
		apps = append(apps, st)
	}
	p.mu.Unlock()
	out := make(map[string]RequestCount, len(apps))
	for _, st := range apps {
		var c RequestCount
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
