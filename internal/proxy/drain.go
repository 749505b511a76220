package proxy

import (
	"context"
	"slices"
	"time"
)

// Drain waits until the given targets, which the routing table no longer
// uses, have no request in flight, or until timeout (when <= 0: the longest
// DrainTimeout of their routes) or ctx ends. It returns how many requests were
// still in flight then. Upgraded connections (WebSockets) to the targets stay
// open until that deadline, and are closed by it: clients reconnect, to the
// new instances. Drain then closes the targets' idle connections and forgets
// them, unless a SetApp routed them again meanwhile (a rollback swapped back).
// Unknown IDs are ignored; routed ones are neither waited for nor forgotten.
func (p *Proxy) Drain(ctx context.Context, ids []string, timeout time.Duration) int {
	p.mu.Lock()
	var ts []*target
	longest := time.Duration(0)
	for _, id := range ids {
		t := p.targets[id]
		if t == nil || slices.Contains(ts, t) {
			continue
		}
		if t.routed.Load() {
			p.logger.Warn("drain: target is still routed; skipped", "app", t.app, "target", id)
			continue
		}
		ts = append(ts, t)
		longest = max(longest, t.drainTimeout)
	}
	p.mu.Unlock()
	if len(ts) == 0 {
		return 0
	}
	if timeout <= 0 {
		timeout = longest
	}
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}

	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, t := range ts {
		if !t.waitIdle(ctx, deadline.C) {
			break
		}
	}
	remaining := 0
	tunnels := 0
	for _, t := range ts {
		remaining += int(max(t.inflight.Load(), 0))
		if !t.routed.Load() {
			tunnels += t.closeTunnels()
		}
	}
	if tunnels > 0 {
		// Give the closed tunnels' handlers a moment to unwind, so the
		// instances see their connections end before they are stopped.
		grace := time.NewTimer(2 * time.Second)
		for _, t := range ts {
			if !t.waitIdle(ctx, grace.C) {
				break
			}
		}
		grace.Stop()
	}

	p.mu.Lock()
	forgotten := make([]string, 0, len(ts))
	for _, t := range ts {
		if t.routed.Load() || p.targets[t.id] != t {
			continue
		}
		delete(p.targets, t.id)
		t.stopChecks()
		t.forgotten.Store(true)
		t.closeIdleConnections(true)
		forgotten = append(forgotten, t.id)
	}
	p.mu.Unlock()
	p.logger.Info("drained", "targets", forgotten, "in_flight", remaining, "websockets_closed", tunnels, "took", time.Since(start).Round(time.Millisecond))
	return remaining
}
