package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// RemoveVolume deletes one of app's volumes and its data, on explicit
// request only. It refuses while the active release mounts the volume or an
// instance that mounts it runs: remove it from the spec and deploy first.
func (e *Engine) RemoveVolume(ctx context.Context, app, name, owner string) error {
	op := newOp()
	unlock, err := e.lock(ctx, op, app, owner, "remove volume "+name, false)
	if err != nil {
		return err
	}
	defer unlock()
	a, err := e.st.GetApp(ctx, app)
	if err != nil {
		return err
	}
	if a.Current != 0 {
		rel, err := e.st.GetRelease(ctx, app, a.Current)
		if err != nil {
			return err
		}
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
		ins, err := e.instancesMounting(ctx, rel, name)
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
	e.st.AddEvent(ctx, store.Event{App: app, Kind: "volume", Message: fmt.Sprintf("volume %s removed by %s", name, owner)})
	return nil
}
