package proxy

import "sync/atomic"

// loadBalancer spreads a route's requests round-robin over its healthy
// targets. The target list never changes after the route is built, and the
// position is one atomic counter, so picking takes no lock.
type loadBalancer struct {
	targets []*target
	next    atomic.Uint32
}

// pick returns the next healthy target that a has not tried yet, or nil when
// there is none.
func (lb *loadBalancer) pick(a *attempt) *target {
	n := uint32(len(lb.targets))
	if n == 0 {
		return nil
	}
	start := lb.next.Add(1) - 1
	for i := range n {
		t := lb.targets[(start+i)%n]
		if t.healthy.Load() && !a.failedOn(t) {
			return t
		}
	}
	return nil
}
