package engine

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// RestoreRequest asks to restore a backup into the app it came from.
type RestoreRequest struct {
	App   string
	ID    string
	Owner string
	Wait  bool
}

// Restore restores a backup, under the app's lock, journaled like a deploy.
// A volume restore stops the instances that mount the volume, swaps the
// volume's content for the archive's, and starts them again (health-gated);
// a postgres restore runs pg_restore in one transaction while the app keeps
// running.
func (e *Engine) Restore(req RestoreRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		b, err := e.st.GetBackup(ctx, req.ID)
		if err != nil || b.App != req.App {
			return store.DeployFailed, fmt.Errorf("%s has no backup %s (see `moorage backup list`)", req.App, req.ID)
		}
		if b.Status != store.BackupOK {
			return store.DeployFailed, fmt.Errorf("backup %s is %s (%s): it cannot be restored", b.ID, b.Status, b.Error)
		}
		if err := checkArchive(b); err != nil {
			return store.DeployFailed, err
		}
		return e.operate(ctx, op, operation{
			App: req.App, Owner: req.Owner, Lock: "restore " + b.ID, Wait: req.Wait,
			NotDeployed: func() error { return fmt.Errorf("restore into %s: %w", req.App, ErrNotDeployed) },
			Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
				in, err := e.decideRestore(ctx, req, b, l)
				return in, "", err
			},
		})
	})
}

// decideRestore is a restore's part of the operation: stop what mounts
// the volume, restore, start it again.
func (e *Engine) decideRestore(ctx context.Context, req RestoreRequest, b *store.Backup, l *loaded) (*execInput, error) {
	a, cur := l.App, l.Active
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return nil, err
	}
	var stop []string
	if b.Kind == BackupVolume {
		// Seen for real: an engine not reached yet would hide the
		// instances to stop, and the volume would change under them.
		if err := reach(ctx, rt); err != nil {
			return nil, fmt.Errorf("cannot restore %s: %w", b.ID, err)
		}
		ins, err := e.instancesMounting(ctx, cur, b.Target)
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			stop = append(stop, in.ID)
		}
	}
	target := e.targetFor(ctx, cur, a.Formation)
	return &execInput{
		app: a, kind: store.KindRestore, owner: req.Owner, rt: rt,
		target: cur, from: cur, scale: a.Formation,
		plan: func(observed []runtime.Instance) *plan.Plan {
			in := plan.RestoreInput{Backup: b.ID, Stop: stop, Converge: plan.ConvergeInput{App: req.App, Target: target, From: cur.ID(), Observed: observed}}
			if len(stop) > 0 {
				in.Converge.Specs = e.specsOf(ctx, req.App, observed)
				in.Converge.Retention = e.retention(ctx, req.App, cur, cur.Version)
			}
			return plan.Restore(in)
		},
	}, nil
}

// restoreStep is the executor's side of plan.RestoreBackup.
func (r *execution) restoreStep(ctx context.Context, s plan.RestoreBackup, out *stepOutput) error {
	b, err := r.e.st.GetBackup(ctx, s.Backup)
	if err != nil {
		return err
	}
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	if b.Kind == BackupPostgres {
		return r.e.restorePostgres(ctx, rel, b, out)
	}
	return r.e.restoreVolume(ctx, rel, b, out)
}

// VerifyBackup checks that a backup restores: its checksum, then a restore
// into a scratch directory or database that must hold data. The result is
// recorded with the backup.
func (e *Engine) VerifyBackup(ctx context.Context, app, id string, out io.Writer) (*store.Backup, error) {
	b, err := e.st.GetBackup(ctx, id)
	if err != nil || b.App != app {
		return nil, fmt.Errorf("%s has no backup %s (see `moorage backup list`)", app, id)
	}
	if b.Status != store.BackupOK {
		return b, fmt.Errorf("backup %s is %s: nothing to verify", id, b.Status)
	}
	err = checkArchive(b)
	if err == nil {
		fmt.Fprintf(out, "checksum ok: sha256 %s, %s\n", b.SHA256, humanBytes(b.Size))
		switch b.Kind {
		case BackupVolume:
			err = e.verifyVolume(ctx, b, out)
		case BackupPostgres:
			var a *store.App
			if a, err = e.st.GetApp(ctx, app); err == nil {
				var rel *store.Release
				if rel, err = e.st.GetRelease(ctx, app, a.Current); err == nil {
					err = e.verifyPostgres(ctx, rel, b, out)
				}
			}
		}
	}
	b.VerifiedAt, b.VerifyError = time.Now().UTC(), ""
	if err != nil {
		b.VerifyError = err.Error()
		e.st.AddEvent(context.WithoutCancel(ctx), store.Event{App: app, Kind: store.EventBackup, Message: fmt.Sprintf("verify of backup %s FAILED: %v", id, err)})
	}
	// Only onto a record that still exists: retention may have deleted
	// the backup meanwhile, and a record with no archive is no backup.
	wctx := context.WithoutCancel(ctx)
	if _, gerr := e.st.GetBackup(wctx, b.ID); gerr == nil {
		if perr := e.st.PutBackup(wctx, b); perr != nil {
			e.log.Error("record a verify", "app", app, "backup", b.ID, "err", perr)
		}
	} else if err == nil {
		err = fmt.Errorf("backup %s was deleted while it was verified (retention?): %w", b.ID, gerr)
	}
	return b, err
}

// DeleteBackup removes a backup's archive, manifest and record.
func (e *Engine) DeleteBackup(ctx context.Context, b *store.Backup) error {
	if err := removeArchive(b); err != nil {
		return err
	}
	return e.st.DeleteBackup(ctx, b.ID)
}

// BackupOp runs CreateBackups as an operation: its output streams as
// events, and it waits for the app's lock so a backup never pauses
// instances a deploy is replacing.
func (e *Engine) BackupOp(req BackupRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		if _, err := e.backupLocked(ctx, op, req); err != nil {
			return store.DeployFailed, err
		}
		return store.DeploySucceeded, nil
	})
}

// backupLocked waits for the app's lock and runs CreateBackups under it.
func (e *Engine) backupLocked(ctx context.Context, op *Op, req BackupRequest) ([]*store.Backup, error) {
	out := newStepOutput(op, 0, "backup")
	unlock, err := e.lock(ctx, op, req.App, req.Owner, "backup", true)
	if err != nil {
		return nil, fmt.Errorf("wait for the lock of %s: %w", req.App, err)
	}
	defer unlock()
	bs, err := e.CreateBackups(ctx, req, out)
	for _, b := range bs {
		if b.Status == store.BackupOK {
			op.emit(Event{Type: EventInfo, Text: fmt.Sprintf("%s  %s %s  %s", b.ID, b.Kind, b.Target, humanBytes(b.Size))})
		}
	}
	return bs, err
}

// VerifyOp runs VerifyBackup as an operation streaming its output.
func (e *Engine) VerifyOp(app, id string) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		out := newStepOutput(op, 0, "verify")
		if _, err := e.VerifyBackup(ctx, app, id, out); err != nil {
			return store.DeployFailed, fmt.Errorf("verify %s: %w", id, err)
		}
		op.emit(Event{Type: EventInfo, Text: id + " restores and holds data"})
		return store.DeploySucceeded, nil
	})
}
