//go:build linux

package process

import (
	"context"
	"os"
	"path/filepath"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Logs calls fn for each matching line an instance printed, oldest first,
// across the rotated files. Logs stay readable after the instance is
// removed. With Follow it keeps streaming, across rotations, until ctx is
// done or the instance is removed.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	return seam.ReadLog(ctx, r.life.Check, id, opts, r.ctx.Done(), fn, func() (string, func() bool) {
		base, exists := r.findLog(id)
		recPath := filepath.Join(r.instanceDir(id), recordFile)
		return base, func() bool {
			_, err := os.Stat(recPath)
			return exists && err == nil
		}
	})
}

// findLog returns the log file of instance id and whether the instance
// exists; "" when it never logged.
func (r *Runtime) findLog(id string) (string, bool) {
	var rec record
	if err := readJSON(filepath.Join(r.instanceDir(id), recordFile), &rec); err == nil && rec.Log != "" {
		return rec.Log, true
	}
	return logs.Find(r.opts.DataDir, id), false
}

// PruneLogs deletes app's log files of instances ret.Keep does not keep
// (see seam.PruneLogs).
func (r *Runtime) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	return seam.PruneLogs(ctx, r.life.Check, r.opts.DataDir, app, ret)
}
