package docker

import (
	"context"

	"github.com/moorage/moorage/internal/runtime"
)

// Events streams instance events (crash, restart, exit) until ctx is done
// or the runtime is closed. Every subscriber gets every event.
func (r *Runtime) Events(ctx context.Context) <-chan runtime.InstanceEvent {
	return r.events.Subscribe(ctx)
}
