//go:build linux

package process

import (
	"context"
	"path/filepath"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/logs"
)

// PruneLogs deletes app's log files (current and rotated) of instances
// r.Keep does not keep: first those not written to for MaxAge, then the
// oldest until the app's logs take at most MaxBytes. Rotated files of kept
// instances go after that if still needed; their current file never does.
func (r *Runtime) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	if err := validName("app", app); err != nil {
		return 0, err
	}
	return logs.Prune(ctx, filepath.Join(r.opts.DataDir, "logs", app), ret)
}
