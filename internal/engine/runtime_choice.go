package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// ErrRuntimeSwitch is returned for a deploy or rollback that would move an
// app to another runtime when moorage cannot move what it has.
var ErrRuntimeSwitch = errors.New("cannot move the app to another runtime")

// An app stays on the runtime of its active release. A deploy moves it to
// another runtime only when asked: `moorage deploy --runtime NAME`, or a
// spec whose runtime changed since the active release (a new `runtime:`
// line, or an `image:` that makes it docker). A spec that still says what
// it said when the app was moved with --runtime does not move it back.
// Volumes do not follow a move (each runtime keeps its own data) and
// accessories cannot: a move of an app with accessories is refused.

// runtimeChoice is the runtime a deploy runs the app on, with the spec
// parsed for that runtime.
type runtimeChoice struct {
	Name string
	Spec *spec.Spec
	// From is the active release's runtime when the deploy moves the app
	// away from it; "" otherwise.
	From string
	Note string // said in the deploy output
}

// chooseRuntime decides the runtime of a deploy of req for an app whose
// active release is active (nil: none).
func chooseRuntime(req DeployRequest, active *store.Release) (*runtimeChoice, error) {
	sp := req.Spec
	c := &runtimeChoice{Name: sp.Runtime, Spec: sp}
	if active == nil || active.Runtime == "" {
		return c, nil
	}
	cur := active.Runtime
	switch {
	case req.Runtime != "":
		c.Name = req.Runtime
	case sp.Runtime == cur:
	case declaredRuntime(active) != "" && declaredRuntime(active) != sp.Runtime:
		c.Note = fmt.Sprintf("the spec's runtime changed from %s (%s) to %s", declaredRuntime(active), active.ID(), sp.Runtime)
	default:
		c.Name = cur
		c.Note = fmt.Sprintf("runtime %s, the one %s runs on (the spec says %s; deploy with --runtime %s to move the app)", cur, active.ID(), sp.Runtime, sp.Runtime)
		re, err := specFor(req, cur)
		if err != nil {
			return nil, err
		}
		c.Spec = re
	}
	if c.Name != cur {
		c.From = cur
		stay := "deploy with --runtime " + cur
		if req.Runtime != "" {
			stay = "deploy without --runtime"
		}
		if err := checkMove(active, c.Name, stay); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// declaredRuntime is the runtime rel's spec file asks for by itself (its
// runtime: line, else what it defaults to), whatever --runtime said; ""
// when unknown.
func declaredRuntime(rel *store.Release) string {
	if rel.SpecYAML == "" || rel.Spec == nil {
		return ""
	}
	sp, err := spec.Parse(rel.Spec.File, []byte(rel.SpecYAML))
	if err != nil {
		return ""
	}
	return sp.Runtime
}

// specFor parses the deployed spec as if it said runtime: name (docker
// defaults such as the port apply on docker).
func specFor(req DeployRequest, name string) (*spec.Spec, error) {
	if req.SpecYAML == "" {
		sp := *req.Spec
		sp.Runtime = name
		return &sp, nil
	}
	sp, err := spec.ParseFor(req.Spec.File, []byte(req.SpecYAML), name)
	if err != nil {
		return nil, fmt.Errorf("the app runs on the %s runtime, and the spec is not valid for it: %w (deploy with --runtime %s to move the app)", name, err, req.Spec.Runtime)
	}
	return sp, nil
}

// checkMove refuses to move the app of release from to runtime to when it
// has accessories: they would stay on the old runtime, out of reach of
// the new one (a container cannot reach a process's loopback port, a
// process cannot resolve a container's name), with their data. stay says
// how to keep the app where it is.
func checkMove(from *store.Release, to, stay string) error {
	names := from.Spec.AccessoryNames()
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s runs on %s with accessories (%s), which cannot move to %s with it: the app could not reach them there, and their data stays on %s. To stay on %s, %s; to move, deploy the app under a new name on %s and copy the data over",
		ErrRuntimeSwitch, from.App, from.Runtime, strings.Join(names, ", "), to, from.Runtime, from.Runtime, stay, to)
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
