package proxy

import "sync"

// broadcast wakes every waiter on each state change: waiters take the current
// channel, and notify closes it and starts a new one. It is how held requests
// wait for a healthy target without polling.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that is closed at the next notify. Take it before
// checking the state it guards so a change in between is not lost.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// notify wakes everyone waiting.
func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
