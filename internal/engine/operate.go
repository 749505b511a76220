package engine

import (
	"context"
	"errors"

	"github.com/moorage/moorage/internal/api"

	"github.com/moorage/moorage/internal/store"
)

// StatusPlanned is the status a dry run ends with (internal/api).
const StatusPlanned = api.StatusPlanned

// operation is one operation that changes what runs (deploy, rollback,
// scale, config change, restore, accessory restart), as the engine's one
// entry point, operate, runs it:
//
//	check → lock → load the app → its active release → decide → execute
//
// and execute goes on with observe → plan → journal → execute → record. The
// operation itself only says what it wants: decide turns the loaded
// state into the release to converge to (a execInput); it reads the store
// and may record what the operation is about (the app's record, its
// formation) but starts and stops nothing. A dry run takes no lock,
// decides as usual (decide must then change nothing: it is told by
// loaded.DryRun), plans and stops.
//
// An operation that journals no plan (a backup, a prune, a recovery once
// a runtime answered, a one-off) goes through the same check → lock →
// load → active release, then does its part in Own (OperateLocked).
type operation struct {
	App, Owner string
	// Lock is the operation as the app's lock names it: "deploy",
	// "scale", "restore b-…".
	Lock   string
	Wait   bool // wait for the lock instead of being refused
	DryRun bool
	// NoLock: the operation takes no lock; it changes nothing about the
	// deployment (a one-off, a verify).
	NoLock bool
	// LockErr, when set, words a failure to take the lock.
	LockErr func(error) error
	// Check, when set, runs first, before the lock: the checks of the
	// request that need no lock (refused at once, not after a wait).
	Check func(ctx context.Context) error
	// NotDeployed, when set, is the error of an app that has no active
	// release (it wraps ErrNotDeployed); unset, the app may have none, or
	// no record at all (loaded.App is then nil) unless NeedApp.
	NotDeployed func() error
	NeedApp     bool
	// RefuseStopped refuses the operation while the app is stopped
	// (`moorage stop`), naming `moorage start`.
	RefuseStopped bool
	// Create, when set, creates the app's record (with this runtime) if it
	// has none yet: a config change can precede the first deploy. A dry
	// run creates nothing. LoadErr, when set, words a failure to load it.
	Create  string
	LoadErr func(error) error
	// Decide is the operation's own part: from what is loaded, the release
	// to converge to. A nil execInput with a nil error ends the operation
	// with the returned status: an operation that changes nothing that
	// runs (a staged config change, removing a volume) does its part here.
	Decide func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error)
	// Own, when set, replaces Decide and execute: an operation whose plan is
	// not a convergence to a release (destroy) plans it purely, prints it
	// (a dry run stops there) and executes it itself; one that journals no
	// plan (OperateLocked) does its part.
	Own func(ctx context.Context, op *Op, l *loaded) (string, error)
}

// loaded is what the entry point read under the lock.
type loaded struct {
	App    *store.App     // nil: no record (only when NotDeployed, NeedApp and Create are unset)
	Active *store.Release // nil: nothing is active
	DryRun bool
}

// operate is the one entry point of every operation that changes what
// runs; see operation.
func (e *Engine) operate(ctx context.Context, op *Op, o operation) (string, error) {
	if o.Check != nil {
		if err := o.Check(ctx); err != nil {
			return store.DeployFailed, err
		}
	}
	if !o.DryRun && !o.NoLock {
		unlock, err := e.lock(ctx, op, o.App, o.Owner, o.Lock, o.Wait)
		if err != nil {
			if o.LockErr != nil {
				err = o.LockErr(err)
			}
			return store.DeployFailed, err
		}
		defer unlock()
	}
	if o.RefuseStopped {
		if err := e.refuseStopped(ctx, o.App, o.Lock); err != nil {
			return store.DeployFailed, err
		}
	}
	l, err := e.load(ctx, o)
	if err != nil {
		if o.LoadErr != nil {
			err = o.LoadErr(err)
		}
		return store.DeployFailed, err
	}
	if o.NotDeployed != nil && l.Active == nil {
		return store.DeployFailed, o.NotDeployed()
	}
	if o.Own != nil {
		return o.Own(ctx, op, l)
	}
	in, status, err := o.Decide(ctx, op, l)
	if err != nil {
		return store.DeployFailed, err
	}
	if in == nil {
		return status, nil
	}
	in.dryRun = o.DryRun
	status, err = e.execute(ctx, op, *in)
	if in.done != nil {
		in.done(status)
	}
	return status, err
}

// load reads the app's record and its active release.
func (e *Engine) load(ctx context.Context, o operation) (*loaded, error) {
	l := &loaded{DryRun: o.DryRun}
	a, err := e.st.GetApp(ctx, o.App)
	switch {
	case errors.Is(err, store.ErrNotFound) && o.Create != "" && !o.DryRun:
		if a, err = e.st.EnsureApp(ctx, o.App, o.Create); err != nil {
			return nil, err
		}
	case errors.Is(err, store.ErrNotFound) && o.NotDeployed == nil && !o.NeedApp:
		return l, nil
	case err != nil:
		return nil, err
	}
	l.App = a
	if a.Current != 0 {
		if l.Active, err = e.st.GetRelease(ctx, o.App, a.Current); err != nil {
			return nil, err
		}
	}
	return l, nil
}
