package runtime

import (
	"context"
	"sync"
)

// Broker fans events out to every subscriber (runtimes use it for Events). Each subscriber has its own
// unbounded queue, so a slow reader never blocks the runtime nor loses
// events.
type Broker struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	wg     sync.WaitGroup
}

type subscriber struct {
	mu     sync.Mutex
	queue  []InstanceEvent
	wake   chan struct{}
	closed chan struct{}
}

// NewBroker returns an empty broker.
func NewBroker() *Broker {
	return &Broker{subs: map[*subscriber]struct{}{}}
}

// Subscribe returns a channel of events that is closed when ctx is done or
// the broker is closed.
func (b *Broker) Subscribe(ctx context.Context) <-chan InstanceEvent {
	out := make(chan InstanceEvent)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(out)
		return out
	}
	s := &subscriber{wake: make(chan struct{}, 1), closed: make(chan struct{})}
	b.subs[s] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()

	go func() {
		defer b.wg.Done()
		defer close(out)
		defer func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			q := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, ev := range q {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-s.closed:
					return
				}
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			}
		}
	}()
	return out
}

// Publish queues ev for every subscriber.
func (b *Broker) Publish(ev InstanceEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.mu.Lock()
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Close ends every subscription and waits for their goroutines.
func (b *Broker) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for s := range b.subs {
			close(s.closed)
		}
	}
	b.mu.Unlock()
	b.wg.Wait()
}
