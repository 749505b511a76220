package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/store"
)

// ErrRuntimeSwitch is returned for a deploy or rollback that would move an
// app to another runtime when moorage cannot move what it has (the
// decision is plan.ChooseRuntime's).
var ErrRuntimeSwitch = plan.ErrRuntimeSwitch

// chooseRuntime is plan.ChooseRuntime for a deploy of req, whose app's
// active release is active (nil: none).
func chooseRuntime(req DeployRequest, active *store.Release) (*plan.RuntimeChoice, error) {
	return plan.ChooseRuntime(plan.RuntimeRequest{Spec: req.Spec, SpecYAML: req.SpecYAML, Runtime: req.Runtime}, deployedRelease(active))
}

// checkMove is plan.CheckMove for the active release from.
func checkMove(from *store.Release, to, stay string) error {
	return plan.CheckMove(deployedRelease(from), to, stay)
}

// deployedRelease is what the runtime choice reads of rel (nil: none).
func deployedRelease(rel *store.Release) *plan.DeployedRelease {
	if rel == nil {
		return nil
	}
	return &plan.DeployedRelease{App: rel.App, ID: rel.ID(), Runtime: rel.Runtime, Spec: rel.Spec, SpecYAML: rel.SpecYAML}
}

// moveWarnings say what does not follow an app from its active release's
// runtime to another: the data of its volumes.
func (e *Engine) moveWarnings(ctx context.Context, from *store.Release, to string) []string {
	out := []string{fmt.Sprintf("moving %s from the %s runtime to %s", from.App, from.Runtime, to)}
	vols := plan.VolumeNames(from.Spec)
	if len(vols) == 0 {
		return out
	}
	var where []string
	if rt, err := e.Runtime(from.Runtime); err == nil {
		for _, v := range vols {
			if p, err := rt.VolumePath(ctx, from.App, v); err == nil {
				where = append(where, v+" in "+p)
			}
		}
	}
	w := fmt.Sprintf("the data of its volumes (%s) does not follow: %s starts them empty", strings.Join(vols, ", "), to)
	if len(where) > 0 {
		w += "; the " + from.Runtime + " runtime keeps it (" + strings.Join(where, ", ") + ")"
	}
	return append(out, w+"; copy it over, or move back with --runtime "+from.Runtime)
}
