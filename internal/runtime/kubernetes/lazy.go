package kubernetes

import (
	"context"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Lazy is the kubernetes runtime of a server that started while the
// cluster's API server did not answer: seam.Lazy (it connects, adopting
// the instances like New, when first needed or when its retries reach
// the API server).
type Lazy struct {
	*seam.Lazy[*Runtime]
}

var (
	_ runtime.Runtime       = Lazy{}
	_ runtime.ArtifactSizer = Lazy{}
)

// NewLazy returns a kubernetes runtime that connects with opts when first
// needed.
func NewLazy(opts RuntimeOptions) Lazy {
	return Lazy{seam.NewLazy(Name, func(ctx context.Context) (*Runtime, error) { return New(ctx, opts) }, opts.Logger)}
}

func (l Lazy) ArtifactSize(ctx context.Context, a runtime.Artifact) (int64, error) {
	return seam.Call(l.Lazy, ctx, 0, func(r *Runtime) (int64, error) { return r.ArtifactSize(ctx, a) })
}
