package swarm

import (
	"context"
	"io"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Lazy is the swarm runtime of a server that started while its manager did
// not answer (down, or not a manager yet): seam.Lazy (it connects,
// re-adopting the services like New, when first needed or when its
// retries reach the manager), with what the swarm runtime does beyond
// runtime.Runtime. Before, such a server ran without its swarm runtime
// until restarted: its swarm apps were neither routed nor managed.
type Lazy struct {
	*seam.Lazy[*Runtime]
}

var (
	_ runtime.Runtime        = Lazy{}
	_ runtime.ArtifactSizer  = Lazy{}
	_ runtime.LostStopper    = Lazy{}
	_ runtime.VolumeArchiver = Lazy{}
)

// NewLazy returns a swarm runtime that connects with opts when first
// needed.
func NewLazy(opts Options) Lazy {
	return Lazy{seam.NewLazy(Name, func(ctx context.Context) (*Runtime, error) { return New(ctx, opts) }, opts.Logger)}
}

func (l Lazy) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	return seam.Call(l.Lazy, ctx, 0, func(r *Runtime) (int64, error) { return r.ArtifactSize(ctx, a) })
}

func (l Lazy) StopLost(ctx context.Context, id string) error {
	return seam.Do(l.Lazy, ctx, func(r *Runtime) error { return r.StopLost(ctx, id) })
}

func (l Lazy) ArchiveVolume(ctx context.Context, app, name string) (io.ReadCloser, string, error) {
	var where string
	rc, err := seam.Call(l.Lazy, ctx, io.ReadCloser(nil), func(r *Runtime) (io.ReadCloser, error) {
		rc, w, err := r.ArchiveVolume(ctx, app, name)
		where = w
		return rc, err
	})
	return rc, where, err
}

func (l Lazy) ReplaceVolume(ctx context.Context, app, name string, content io.Reader) (string, error) {
	return seam.Call(l.Lazy, ctx, "", func(r *Runtime) (string, error) { return r.ReplaceVolume(ctx, app, name, content) })
}
