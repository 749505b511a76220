package proxy

import (
	"cmp"
	"slices"
	"time"
)

// TargetStatus is the state of one target as the proxy sees it.
type TargetStatus struct {
	ID, Addr, App, Service string
	Routed                 bool // in the current routing table
	Healthy                bool // in rotation
	InFlight               int  // requests and upgraded connections being served
	ConsecutiveFailures    int
	LastError              string
	LastCheck              time.Time
}

// Status reports every target of app, routed or waiting to be drained,
// ordered by service then ID; app "" reports every app.
func (p *Proxy) Status(app string) []TargetStatus {
	p.mu.Lock()
	out := make([]TargetStatus, 0, len(p.targets))
	for _, t := range p.targets {
		if app == "" || t.app == app {
			out = append(out, t.status())
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b TargetStatus) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}
