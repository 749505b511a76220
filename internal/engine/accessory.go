package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// AccessoryRestartRequest asks to restart an accessory with the active
// release's spec of it.
type AccessoryRestartRequest struct {
	App, Name, Owner string
	Wait             bool
	DryRun           bool
}

// RestartAccessory stops an accessory and starts it again, waiting until it
// is ready. App deploys never restart a running accessory unless its spec
// changed; this is how an operator does it on purpose. Journaled like a
// deploy.
func (e *Engine) RestartAccessory(req AccessoryRestartRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.operate(ctx, op, operation{
			App: req.App, Owner: req.Owner, Lock: "restart accessory " + req.Name, Wait: req.Wait, DryRun: req.DryRun,
			NotDeployed: func() error { return fmt.Errorf("%s: %w", req.App, ErrNotDeployed) },
			Check:       e.refuseDestroying(req.App, "restart accessory"),
			Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
				a, cur := l.App, l.Active
				if cur.Spec.Accessories[req.Name] == nil {
					return nil, "", noAccessory(cur, req.Name)
				}
				stopped, err := e.stoppedAccessories(ctx, req.App)
				if err != nil {
					return nil, "", err
				}
				if stopped[req.Name] {
					return nil, "", fmt.Errorf("accessory %s of %s is stopped: start it with `moorage accessory start -a %s %s`", req.Name, req.App, req.App, req.Name)
				}
				rt, err := e.Runtime(cur.Runtime)
				if err != nil {
					return nil, "", err
				}
				return &execInput{
					app: a, kind: store.KindAccessory, owner: req.Owner, rt: rt,
					target: cur, from: cur, scale: a.Formation,
					plan: func([]runtime.Instance) *plan.Plan {
						return plan.RestartAccessory(req.App, cur.ID(), req.Name, req.Owner)
					},
				}, "", nil
			},
		})
	})
}

func noAccessory(rel *store.Release, name string) error {
	return fmt.Errorf("%s has no accessory %q (accessories: %s)", rel.ID(), name, orNone(strings.Join(rel.Spec.AccessoryNames(), ", ")))
}

// AccessoryOpRequest asks to stop, start or remove an accessory.
type AccessoryOpRequest struct {
	App, Name, Owner string
	Action           string // AccessoryStop, AccessoryStart, AccessoryRemove
	// Volumes (remove): delete the accessory's volumes too, those no
	// service of the active release mounts.
	Volumes bool
	Wait    bool
	DryRun  bool
}

// AccessoryOp stops, starts or removes an accessory, under the app's lock,
// journaled like a deploy.
//
//   - stop: the accessory stops and is recorded as stopped. It stays
//     stopped across server restarts, deploys and rollbacks (their plans
//     say "stay stopped", and deploys warn) until start.
//   - start: a stopped accessory starts with the active release's spec of
//     it, health-gated.
//   - remove: only an accessory the active release no longer declares
//     (remove it from moorage.yaml and deploy first: deploys never remove
//     one on their own). Its volumes stay unless Volumes.
func (e *Engine) AccessoryOp(req AccessoryOpRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.operate(ctx, op, operation{
			App: req.App, Owner: req.Owner, Lock: req.Action + " accessory " + req.Name, Wait: req.Wait, DryRun: req.DryRun,
			NotDeployed: func() error { return fmt.Errorf("%s: %w", req.App, ErrNotDeployed) },
			Check:       e.refuseDestroying(req.App, req.Action+" accessory"),
			Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
				return e.decideAccessoryOp(ctx, req, l)
			},
		})
	})
}

func (e *Engine) decideAccessoryOp(ctx context.Context, req AccessoryOpRequest, l *loaded) (*execInput, string, error) {
	a, cur := l.App, l.Active
	stopped, err := e.stoppedAccessories(ctx, req.App)
	if err != nil {
		return nil, "", err
	}
	observed, err := e.observe(ctx, req.App)
	if err != nil {
		return nil, "", err
	}
	id := runtime.InstanceID(req.App, req.Name, "", 0, runtime.KindAccessory)
	runs := false
	for _, in := range observed {
		if in.ID == id {
			runs = true
		}
	}
	declared := cur.Spec.Accessories[req.Name] != nil
	in := plan.AccessoryOpInput{App: req.App, Release: cur.ID(), Name: req.Name, Action: req.Action, Owner: req.Owner}
	switch req.Action {
	case AccessoryStop:
		switch {
		case !declared:
			return nil, "", noAccessory(cur, req.Name)
		case stopped[req.Name] && !runs:
			return nil, "", fmt.Errorf("accessory %s of %s is already stopped (moorage accessory start -a %s %s starts it)", req.Name, req.App, req.App, req.Name)
		}
	case AccessoryStart:
		switch {
		case !declared:
			return nil, "", noAccessory(cur, req.Name)
		case !stopped[req.Name]:
			return nil, "", fmt.Errorf("accessory %s of %s is not stopped (moorage accessory restart -a %s %s restarts it)", req.Name, req.App, req.App, req.Name)
		}
	case AccessoryRemove:
		if declared {
			return nil, "", fmt.Errorf("accessory %s is declared by the active release %s: remove it from moorage.yaml and deploy first (`moorage accessory stop -a %s %s` only stops it)", req.Name, cur.ID(), req.App, req.Name)
		}
		was, prev := e.accessoryVolumes(ctx, req.App, req.Name)
		if !runs && !stopped[req.Name] && !was {
			return nil, "", fmt.Errorf("%s has no accessory %q to remove: none runs and no release declared it", req.App, req.Name)
		}
		if req.Volumes {
			used := map[string]bool{}
			for _, v := range plan.VolumeNames(cur.Spec) {
				used[v] = true
			}
			for _, v := range prev {
				if !used[v] {
					in.Volumes = append(in.Volumes, v)
				}
			}
		}
	default:
		return nil, "", fmt.Errorf("unknown accessory operation %q", req.Action)
	}
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return nil, "", err
	}
	return &execInput{
		app: a, kind: store.KindAccessory, owner: req.Owner, rt: rt,
		target: cur, from: cur, scale: a.Formation,
		plan: func([]runtime.Instance) *plan.Plan { return plan.AccessoryOp(in) },
	}, "", nil
}

// accessoryVolumes reports whether any release of app declared accessory
// name, and the named volumes it mounted there.
func (e *Engine) accessoryVolumes(ctx context.Context, app, name string) (declared bool, vols []string) {
	rels, err := e.st.ListReleases(ctx, app)
	if err != nil {
		return false, nil
	}
	set := map[string]bool{}
	for _, r := range rels {
		acc := r.Spec.Accessories[name]
		if acc == nil {
			continue
		}
		declared = true
		for _, v := range acc.Volumes {
			if !strings.HasPrefix(v.Name, "/") && !strings.HasPrefix(v.Name, ".") && !set[v.Name] {
				set[v.Name] = true
				vols = append(vols, v.Name)
			}
		}
	}
	sort.Strings(vols)
	return declared, vols
}

// journalStoppedAccessories is the journal key of an app's stopped
// accessories (a JSON list of names).
const journalStoppedAccessories = "stopped-accessories"

// stoppedAccessories returns the accessories of app stopped with `moorage
// accessory stop`. An error reading them is returned, never taken for
// "none stopped".
// StoppedAccessories are app's accessories stopped with `moorage
// accessory stop`.
func (e *Engine) StoppedAccessories(ctx context.Context, app string) (map[string]bool, error) {
	return e.stoppedAccessories(ctx, app)
}

func (e *Engine) stoppedAccessories(ctx context.Context, app string) (map[string]bool, error) {
	v, err := e.st.GetJournal(ctx, app, journalStoppedAccessories)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal([]byte(v), &names); err != nil {
		return nil, fmt.Errorf("stopped accessories of %s: %w", app, err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func (e *Engine) setAccessoryStopped(ctx context.Context, app, name string, stopped bool) error {
	m, err := e.stoppedAccessories(ctx, app)
	if err != nil {
		return err
	}
	if m[name] == stopped {
		return nil
	}
	if stopped {
		m[name] = true
	} else {
		delete(m, name)
	}
	if len(m) == 0 {
		return e.st.DeleteJournal(ctx, app, journalStoppedAccessories)
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	b, _ := json.Marshal(names)
	return e.st.PutJournal(ctx, app, journalStoppedAccessories, string(b))
}

// targetFor is targetOf with the app's stopped accessories, which no plan
// starts. Unreadable, they are taken as all stopped: a plan that leaves an
// accessory down is undone by `moorage accessory start`, one that starts a
// stopped database is not.
func (e *Engine) targetFor(ctx context.Context, rel *store.Release, scale map[string]int) *plan.Target {
	t := targetOf(rel, scale)
	stopped, err := e.stoppedAccessories(ctx, rel.App)
	if err != nil {
		e.log.Error("stopped accessories", "app", rel.App, "err", err)
		stopped = map[string]bool{}
		for n := range rel.Spec.Accessories {
			stopped[n] = true
		}
	}
	t.StoppedAccessories = stopped
	return t
}

// deleteVolumes deletes app's volumes names in every runtime, saying which
// it deleted; one that does not exist is skipped.
func (e *Engine) deleteVolumes(ctx context.Context, app string, names []string, out *stepOutput) error {
	var errs []error
	for _, name := range names {
		removed := false
		for _, rt := range e.runtimes {
			vr, ok := rt.(runtime.VolumeRemover)
			if !ok {
				continue
			}
			where, _ := rt.VolumePath(ctx, app, name)
			err := vr.RemoveVolume(ctx, app, name)
			switch {
			case err == nil:
				removed = true
				out.Printf("deleted volume %s (%s: %s)", name, rt.Name(), where)
			case !errors.Is(err, runtime.ErrNotFound):
				errs = append(errs, fmt.Errorf("volume %s: %w", name, err))
			}
		}
		if !removed {
			out.Printf("volume %s: already gone", name)
		}
	}
	return errors.Join(errs...)
}

// Accessory actions (internal/plan), as the API asks for them.
const (
	AccessoryStart   = plan.AccessoryStart
	AccessoryRestart = plan.AccessoryRestart
	AccessoryStop    = plan.AccessoryStop
	AccessoryRemove  = plan.AccessoryRemove
)
