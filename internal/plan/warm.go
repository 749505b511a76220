package plan

import (
	"sort"
	"time"

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

// WarmInput is what WarmRelease decides from: the active release, its
// deploy.keep_warm, and the deploy that made it active.
type WarmInput struct {
	Active   int           // the active release's version
	KeepWarm time.Duration // its spec's deploy.keep_warm
	From     int           // the release its deploy replaced (0: none)
	Ended    time.Time     // when that deploy ended (zero: it still runs)
	Now      time.Time
}

// WarmRelease is the release whose web instances stay warm while in.Active
// is active: the one its deploy replaced, for keep_warm from the end of
// that deploy (from now while it still runs). "" when there is none or
// its time is over.
func WarmRelease(in WarmInput) (string, time.Time) {
	if in.KeepWarm <= 0 || in.From == 0 || in.From == in.Active {
		return "", time.Time{}
	}
	end := in.Ended
	if end.IsZero() {
		end = in.Now
	}
	until := end.Add(in.KeepWarm)
	if !in.Now.Before(until) {
		return "", time.Time{}
	}
	return releaseID(in.From), until
}
