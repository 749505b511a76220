//go:build !linux

package process

import (
	"fmt"
	goruntime "runtime"

	"github.com/moorage/moorage/internal/runtime"
)

// Runtime is the process runtime; it only works on Linux.
type Runtime struct{ runtime.Runtime }

// New fails: the process runtime needs Linux (pidfds, /proc, subreapers).
func New(opts Options) (*Runtime, error) {
	return nil, fmt.Errorf("process runtime on %s: %w", goruntime.GOOS, runtime.ErrNotSupported)
}

// MaybeRunShim does nothing: shims only exist on Linux.
func MaybeRunShim() {}
