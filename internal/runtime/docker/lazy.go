package docker

import (
	"context"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Lazy is the docker runtime of a server that started while no engine
// answered: seam.Lazy (it connects, re-adopting the containers like New,
// when first needed or when its retries reach the engine), with what the
// docker runtime does beyond runtime.Runtime.
type Lazy struct {
	*seam.Lazy[*Runtime]
}

var (
	_ runtime.Runtime       = Lazy{}
	_ runtime.VolumeRemover = Lazy{}
	_ runtime.ArtifactSizer = Lazy{}
)

// NewLazy returns a docker runtime that connects with opts when first
// needed.
func NewLazy(opts Options) Lazy {
	return Lazy{seam.NewLazy(Name, func(ctx context.Context) (*Runtime, error) { return New(ctx, opts) }, opts.Logger)}
}

func (l Lazy) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	return seam.Call(l.Lazy, ctx, 0, func(r *Runtime) (int64, error) { return r.ArtifactSize(ctx, a) })
}

func (l Lazy) RemoveVolume(ctx context.Context, app, name string) error {
	return seam.Do(l.Lazy, ctx, func(r *Runtime) error { return r.RemoveVolume(ctx, app, name) })
}
