package docker

import (
	"context"
	"sync"

	"github.com/moorage/moorage/internal/runtime"
)

// broker fans events out to every subscriber. Each subscriber has its own
// unbounded queue, so a slow reader never blocks the runtime nor loses
// events.
type broker struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	wg     sync.WaitGroup
}

type subscriber struct {
	mu     sync.Mutex
	queue  []runtime.Event
	wake   chan struct{}
	closed chan struct{}
}

func newBroker() *broker {
	return &broker{subs: map[*subscriber]struct{}{}}
}

// subscribe returns a channel of events that is closed when ctx is done or
// the broker is closed.
func (b *broker) subscribe(ctx context.Context) <-chan runtime.Event {
	out := make(chan runtime.Event)
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

func (b *broker) publish(ev runtime.Event) {
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

// close ends every subscription and waits for their goroutines.
func (b *broker) close() {
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

// Events streams instance events (crash, restart, exit) until ctx is done
// or the runtime is closed. Every subscriber gets every event.
func (r *Runtime) Events(ctx context.Context) <-chan runtime.Event {
	return r.events.subscribe(ctx)
}
