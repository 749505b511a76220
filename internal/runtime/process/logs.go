//go:build linux

package process

import (
	"context"
	"fmt"
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
	if err := r.check(); err != nil {
		return err
	}
	if err := seam.ValidName("instance", id); err != nil {
		return fmt.Errorf("logs of %s: %w", id, runtime.ErrNotFound)
	}
	base, exists := r.findLog(id)
	if base == "" {
		return fmt.Errorf("logs of %s: %w", id, runtime.ErrNotFound)
	}
	recPath := filepath.Join(r.instanceDir(id), recordFile)
	lr := logs.Reader{
		ID:   id,
		Base: base,
		Live: func() bool {
			_, err := os.Stat(recPath)
			return exists && err == nil
		},
		Closed: r.ctx.Done(),
	}
	return lr.Read(ctx, opts, fn)
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
	return seam.PruneLogs(ctx, r.check, r.opts.DataDir, app, ret)
}
