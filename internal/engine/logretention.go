package engine

import (
	"context"
	"errors"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// PruneLogs applies the active spec's log retention to app's logs in every
// runtime (a deploy's prune step; internal/prune's `moorage prune` and
// hourly retention). The logs of running instances are kept.
func (e *Engine) PruneLogs(ctx context.Context, a *store.App) (int64, error) {
	ret := runtime.LogRetention{MaxAge: spec.DefaultLogMaxAge, MaxBytes: spec.DefaultLogMaxSize}
	if a.Current != 0 {
		if rel, err := e.st.GetRelease(ctx, a.Name, a.Current); err == nil && rel.Spec.Logs.MaxAge > 0 {
			ret.MaxAge, ret.MaxBytes = rel.Spec.Logs.MaxAge, rel.Spec.Logs.MaxSize
		}
	}
	observed, err := e.observe(ctx, a.Name)
	if err != nil {
		return 0, err
	}
	running := map[string]bool{}
	for _, in := range observed {
		if in.State != runtime.StateExited {
			running[in.ID] = true
		}
	}
	ret.Keep = func(id string) bool { return running[id] }
	var total int64
	var errs []error
	for _, rt := range e.runtimes {
		n, err := rt.PruneLogs(ctx, a.Name, ret)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}
