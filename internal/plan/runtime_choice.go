package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moorage/moorage/internal/spec"
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

// RuntimeRequest is what a deploy asks for: its spec (as parsed for the
// runtime it names, or the flag's), the spec file's text, and --runtime.
type RuntimeRequest struct {
	Spec     *spec.Spec
	SpecYAML string
	Runtime  string // --runtime ("" when not given)
}

// DeployedRelease is what the runtime choice reads of the active release.
type DeployedRelease struct {
	App, ID  string // "hello", "v3"
	Runtime  string
	Spec     *spec.Spec
	SpecYAML string // "" when not kept
}

// RuntimeChoice is the runtime a deploy runs the app on, with the spec
// parsed for that runtime.
type RuntimeChoice struct {
	Name string
	Spec *spec.Spec
	// From is the active release's runtime when the deploy moves the app
	// away from it; "" otherwise.
	From string
	Note string // said in the deploy output
}

// ChooseRuntime decides the runtime of a deploy of req for an app whose
// active release is active (nil: none).
func ChooseRuntime(req RuntimeRequest, active *DeployedRelease) (*RuntimeChoice, error) {
	sp := req.Spec
	c := &RuntimeChoice{Name: sp.Runtime, Spec: sp}
	if active == nil || active.Runtime == "" {
		return c, nil
	}
	cur := active.Runtime
	declared := declaredRuntime(active)
	switch {
	case req.Runtime != "":
		c.Name = req.Runtime
	case sp.Runtime == cur:
	case declared != "" && declared != sp.Runtime:
		c.Note = fmt.Sprintf("the spec's runtime changed from %s (%s) to %s", declared, active.ID, sp.Runtime)
	default:
		c.Name = cur
		c.Note = fmt.Sprintf("runtime %s, the one %s runs on (the spec says %s; deploy with --runtime %s to move the app)", cur, active.ID, sp.Runtime, sp.Runtime)
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
		if err := CheckMove(active, c.Name, stay); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// declaredRuntime is the runtime rel's spec file asks for by itself (its
// runtime: line, else what it defaults to), whatever --runtime said; ""
// when unknown.
func declaredRuntime(rel *DeployedRelease) string {
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
func specFor(req RuntimeRequest, name string) (*spec.Spec, error) {
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

// CheckMove refuses to move the app of release from to runtime to when it
// has accessories: they would stay on the old runtime, out of reach of
// the new one (a container cannot reach a process's loopback port, a
// process cannot resolve a container's name), with their data. stay says
// how to keep the app where it is.
func CheckMove(from *DeployedRelease, to, stay string) error {
	names := from.Spec.AccessoryNames()
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s runs on %s with accessories (%s), which cannot move to %s with it: the app could not reach them there, and their data stays on %s. To stay on %s, %s; to move, deploy the app under a new name on %s and copy the data over",
		ErrRuntimeSwitch, from.App, from.Runtime, strings.Join(names, ", "), to, from.Runtime, from.Runtime, stay, to)
}
