package plan

import (
	"sort"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// CoolDownInput is what CoolDown decides from.
type CoolDownInput struct {
	Active string // the active release
	// Warm is the release whose web instances are still within their
	// deploy.keep_warm ("" when none is).
	Warm     string
	Observed []runtime.Instance
	Specs    map[string]*spec.Spec // the specs of the observed instances' releases
}

// CoolDown picks the web instances the server stops once a deploy's
// keep_warm is over: those of routed services of releases other than the
// active one and the one still warm. It runs under the app's lock, when no
// operation is under way, so any such instance is a warm one whose time is
// over. Workers, singletons and accessories are not its business (they
// never stay warm).
func CoolDown(in CoolDownInput) []string {
	var ids []string
	for _, o := range in.Observed {
		if o.Kind != runtime.KindService || o.Release == in.Active || (in.Warm != "" && o.Release == in.Warm) {
			continue
		}
		sp := in.Specs[o.Release]
		if sp == nil {
			continue // a release it cannot read: not known to be web
		}
		if svc := sp.Services[o.Service]; svc != nil && svc.Routed() && !svc.Singleton {
			ids = append(ids, o.ID)
		}
	}
	sort.Strings(ids)
	return ids
}
