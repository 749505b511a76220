package engine

import (
	"context"
	"errors"
	"time"

	"github.com/moorage/moorage/internal/store"
)

// lock takes app's deploy lock for op. Held by someone else: refused with a
// *store.LockedError naming who and since, or, with wait, waits for it.
// The returned function releases it.
//
// The lock names the server process that holds it, and only one server
// uses a data dir at a time (its file lock), so a lock can only outlive its
// holder through a crash, and the next server clears it at start
// (recovery). A holder that is alive releases it when its operation ends,
// however it ends; there is no heartbeat to watch.
func (e *Engine) lock(ctx context.Context, op *Op, app, owner, operation string, wait bool) (func(), error) {
	announced := false
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		wake := e.lockWake
		e.mu.Unlock()
		err := e.st.AcquireLock(ctx, store.Lock{App: app, Owner: owner, Operation: operation, Server: e.server})
		if err == nil {
			break
		}
		var le *store.LockedError
		if !errors.As(err, &le) {
			return nil, err
		}
		// The server's own short housekeeping (stopping the web kept warm,
		// coolDown) is waited for even unasked: nobody chose to run it, and
		// refusing a deploy for it would refuse a request for nothing.
		if !wait && le.Lock.Operation != coolDownLock {
			return nil, err
		}
		if !announced {
			op.emit(Event{Type: EventInfo, Text: "waiting: " + le.Error()})
			announced = true
		}
		// Every lock is this server's, released through unlock (wake);
		// the poll is a safety net.
		t := time.NewTimer(time.Second)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
	e.mu.Lock()
	e.ops[app] = op
	e.mu.Unlock()

	return func() {
		if err := e.st.ReleaseLock(context.WithoutCancel(ctx), app, e.server); err != nil {
			e.log.Error("release lock", "app", app, "err", err)
		}
		e.mu.Lock()
		if e.ops[app] == op {
			delete(e.ops, app)
		}
		close(e.lockWake)
		e.lockWake = make(chan struct{})
		e.mu.Unlock()
	}, nil
}

// Running returns the operation that holds app's lock, if any.
func (e *Engine) Running(app string) *Op {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ops[app]
}
