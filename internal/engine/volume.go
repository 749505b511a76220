package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// RemoveVolume deletes one of app's volumes and its data, on explicit
// request only. It refuses while the active release mounts the volume or an
// instance that mounts it runs: remove it from the spec and deploy first.
func (e *Engine) RemoveVolume(ctx context.Context, app, name, owner string) error {
	_, err := e.operate(ctx, newOp(), operation{
		App: app, Owner: owner, Lock: "remove volume " + name, NeedApp: true,
		Decide: func(ctx context.Context, _ *Op, l *loaded) (*execInput, string, error) {
			// Nothing to plan: what runs does not change.
			if err := e.removeVolume(ctx, app, name, owner, l.Active); err != nil {
				return nil, "", err
			}
			return nil, store.DeploySucceeded, nil
		},
	})
	return err
}

// removeVolume is RemoveVolume under the app's lock; rel is the active
// release (nil: none).
func (e *Engine) removeVolume(ctx context.Context, app, name, owner string, rel *store.Release) error {
	if rel != nil {
		var users []string
		for _, svc := range rel.Spec.ServiceNames() {
			for _, v := range rel.Spec.VolumesFor(svc) {
				if v.Name == name {
					users = append(users, svc)
				}
			}
		}
		for _, acc := range rel.Spec.AccessoryNames() {
			for _, v := range rel.Spec.Accessories[acc].Volumes {
				if v.Name == name {
					users = append(users, "accessory "+acc)
				}
			}
		}
		if len(users) > 0 {
			return fmt.Errorf("volume %s is mounted by %s of the active release %s: remove it from moorage.yaml and deploy first", name, strings.Join(users, ", "), rel.ID())
		}
		ins, err := e.InstancesMounting(ctx, rel, name)
		if err != nil {
			return err
		}
		if len(ins) > 0 {
			return fmt.Errorf("volume %s is mounted by running instance %s", name, ins[0].ID)
		}
	}
	removed := false
	var errs []error
	for _, rt := range e.runtimes {
		vr, ok := rt.(runtime.VolumeRemover)
		if !ok {
			continue
		}
		if err := vr.RemoveVolume(ctx, app, name); err == nil {
			removed = true
		} else if !errors.Is(err, runtime.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("%s has no volume %q: %w", app, name, store.ErrNotFound)
	}
	e.st.AddEvent(ctx, store.AppEvent{App: app, Kind: "volume", Message: fmt.Sprintf("volume %s removed by %s", name, owner)})
	return nil
}

// InstancesMounting returns the running instances of app that mount volume
// name (services of the active release's spec, and accessories).
func (e *Engine) InstancesMounting(ctx context.Context, rel *store.Release, volume string) ([]runtime.Instance, error) {
	observed, err := e.observe(ctx, rel.App)
	if err != nil {
		return nil, err
	}
	specs := e.specsOf(ctx, rel.App, observed)
	var out []runtime.Instance
	for _, in := range observed {
		if in.State == runtime.StateExited {
			continue
		}
		switch in.Kind {
		case runtime.KindAccessory:
			if acc := rel.Spec.Accessories[in.Service]; acc != nil {
				for _, v := range acc.Volumes {
					if v.Name == volume {
						out = append(out, in)
					}
				}
			}
		case runtime.KindService:
			sp := specs[in.Release]
			if sp == nil {
				sp = rel.Spec
			}
			for _, v := range sp.VolumesFor(in.Service) {
				if v.Name == volume {
					out = append(out, in)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
