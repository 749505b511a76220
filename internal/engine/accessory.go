package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// AccessoryRestartRequest asks to restart an accessory with the active
// release's spec of it.
type AccessoryRestartRequest struct {
	App, Name, Owner string
	Wait             bool
}

// RestartAccessory stops an accessory and starts it again, waiting until it
// is ready. App deploys never restart a running accessory unless its spec
// changed; this is how an operator does it on purpose. Journaled like a
// deploy.
func (e *Engine) RestartAccessory(req AccessoryRestartRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.operate(ctx, op, operation{
			App: req.App, Owner: req.Owner, Lock: "restart accessory " + req.Name, Wait: req.Wait,
			NotDeployed: func() error { return fmt.Errorf("%s: %w", req.App, ErrNotDeployed) },
			Decide: func(ctx context.Context, op *Op, l *loaded) (*runInput, string, error) {
				a, cur := l.App, l.Active
				if cur.Spec.Accessories[req.Name] == nil {
					return nil, "", fmt.Errorf("%s has no accessory %q (accessories: %s)", cur.ID(), req.Name, strings.Join(cur.Spec.AccessoryNames(), ", "))
				}
				rt, err := e.Runtime(cur.Runtime)
				if err != nil {
					return nil, "", err
				}
				return &runInput{
					app: a, kind: store.KindAccessory, owner: req.Owner, rt: rt,
					target: cur, from: cur, scale: a.Formation,
					plan: func([]runtime.Instance) *Plan {
						return &Plan{App: req.App, Kind: "accessory restart", Target: cur.ID(), From: cur.ID(), Steps: []Step{
							{Kind: StepAccessory, Release: cur.ID(), Name: req.Name, Action: AccessoryRestart, Reason: "asked by " + req.Owner},
						}}
					},
				}, "", nil
			},
		})
	})
}
