package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/fsutil"
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
// running. It goes through the engine's entry point (OperateActive), with
// its own planner (plan.Restore) and step (plan.RestoreBackup, whose
// handler is restoreStep).
func (m *Manager) Restore(req RestoreRequest) *engine.Op {
	return m.e.StartOp(func(ctx context.Context, op *engine.Op) (string, error) {
		b, err := m.st.GetBackup(ctx, req.ID)
		if err != nil || b.App != req.App {
			return store.DeployFailed, fmt.Errorf("%s has no backup %s (see `moorage backup list`)", req.App, req.ID)
		}
		if b.Status != store.BackupOK {
			return store.DeployFailed, fmt.Errorf("backup %s is %s (%s): it cannot be restored", b.ID, b.Status, b.Error)
		}
		if err := checkArchive(b); err != nil {
			return store.DeployFailed, err
		}
		return m.e.OperateActive(ctx, op, engine.ActiveOperation{
			App: req.App, Owner: req.Owner, Lock: "restore " + b.ID, Wait: req.Wait, Kind: store.KindRestore,
			NotDeployed: func() error { return fmt.Errorf("restore into %s: %w", req.App, engine.ErrNotDeployed) },
			Decide: func(ctx context.Context, cur *store.Release) (func(plan.ConvergeInput) *plan.Plan, error) {
				return m.decideRestore(ctx, b, cur)
			},
		})
	})
}

// decideRestore is a restore's part of the operation: stop what mounts
// the volume, restore, start it again.
func (m *Manager) decideRestore(ctx context.Context, b *store.Backup, cur *store.Release) (func(plan.ConvergeInput) *plan.Plan, error) {
	rt, err := m.e.Runtime(cur.Runtime)
	if err != nil {
		return nil, err
	}
	var stop []string
	if b.Kind == BackupVolume {
		// Seen for real: an engine not reached yet would hide the
		// instances to stop, and the volume would change under them.
		if err := engine.Reach(ctx, rt); err != nil {
			return nil, fmt.Errorf("cannot restore %s: %w", b.ID, err)
		}
		// A runtime that cannot reach into the volume (swarm) refuses
		// before anything is stopped.
		if _, remote := rt.(runtime.VolumeArchiver); !remote {
			if _, err := rt.VolumePath(ctx, cur.App, b.Target); errors.Is(err, runtime.ErrNotSupported) {
				return nil, fmt.Errorf("cannot restore %s: %w", b.ID, err)
			}
		}
		ins, err := m.e.InstancesMounting(ctx, cur, b.Target)
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			stop = append(stop, in.ID)
		}
	}
	return func(c plan.ConvergeInput) *plan.Plan {
		return plan.Restore(plan.RestoreInput{Backup: b.ID, Stop: stop, Converge: c})
	}, nil
}

// restoreStep is the handler of plan.RestoreBackup, registered with the
// engine by New.
func (m *Manager) restoreStep(ctx context.Context, x *engine.Exec, s plan.RestoreBackup) error {
	b, err := m.st.GetBackup(ctx, s.Backup)
	if err != nil {
		return err
	}
	rel, err := x.Release(ctx, s.Release)
	if err != nil {
		return err
	}
	if b.Kind == BackupPostgres {
		return m.restorePostgres(ctx, rel, b, x.Output())
	}
	return m.restoreVolume(ctx, rel, b, x.Output())
}

// VerifyBackup checks that a backup restores: its checksum, then a restore
// into a scratch directory or database that must hold data. The result is
// recorded with the backup.
func (m *Manager) VerifyBackup(ctx context.Context, app, id string, out io.Writer) (*store.Backup, error) {
	b, err := m.st.GetBackup(ctx, id)
	if err != nil || b.App != app {
		return nil, fmt.Errorf("%s has no backup %s (see `moorage backup list`)", app, id)
	}
	if b.Status != store.BackupOK {
		return b, fmt.Errorf("backup %s is %s: nothing to verify", id, b.Status)
	}
	err = checkArchive(b)
	if err == nil {
		fmt.Fprintf(out, "checksum ok: sha256 %s, %s\n", b.SHA256, fsutil.HumanBytes(b.Size))
		switch b.Kind {
		case BackupVolume:
			err = m.verifyVolume(ctx, b, out)
		case BackupPostgres:
			// Into the active release's accessory; nothing about the
			// deployment changes, so no lock. No active release: nothing
			// to restore into, said so (not found, like a missing app).
			err = m.e.OperateLocked(ctx, nil, engine.LockedOperation{
				App: app, NeedApp: true,
				NotDeployed: func() error {
					return fmt.Errorf("%s has no active release to verify backup %s in (a postgres backup is verified by restoring it into a scratch database of the active release's %s accessory); deploy the app first: %w", app, id, b.Target, store.ErrNotFound)
				},
			}, func(ctx context.Context, _ *store.App, rel *store.Release) error {
				return m.verifyPostgres(ctx, rel, b, out)
			})
		}
	}
	b.VerifiedAt, b.VerifyError = time.Now().UTC(), ""
	if err != nil {
		b.VerifyError = err.Error()
		m.st.AddEvent(context.WithoutCancel(ctx), store.AppEvent{App: app, Kind: store.EventBackup, Message: fmt.Sprintf("verify of backup %s FAILED: %v", id, err)})
	}
	// Only onto a record that still exists: retention may have deleted
	// the backup meanwhile, and a record with no archive is no backup.
	wctx := context.WithoutCancel(ctx)
	if _, gerr := m.st.GetBackup(wctx, b.ID); gerr == nil {
		if perr := m.st.PutBackup(wctx, b); perr != nil {
			m.log.Error("record a verify", "app", app, "backup", b.ID, "err", perr)
		}
	} else if err == nil {
		err = fmt.Errorf("backup %s was deleted while it was verified (retention?): %w", b.ID, gerr)
	}
	return b, err
}

// DeleteBackup removes a backup's archive, manifest and record.
func (m *Manager) DeleteBackup(ctx context.Context, b *store.Backup) error {
	if err := removeArchive(b); err != nil {
		return err
	}
	return m.st.DeleteBackup(ctx, b.ID)
}

// BackupOp runs createBackups as an operation: its output streams as
// events, and it waits for the app's lock so a backup never pauses
// instances a deploy is replacing.
func (m *Manager) BackupOp(req BackupRequest) *engine.Op {
	return m.e.StartOp(func(ctx context.Context, op *engine.Op) (string, error) {
		if _, err := m.backupLocked(ctx, op, req); err != nil {
			return store.DeployFailed, err
		}
		return store.DeploySucceeded, nil
	})
}

// backupLocked waits for the app's lock and runs createBackups under it,
// in its active release.
func (m *Manager) backupLocked(ctx context.Context, op *engine.Op, req BackupRequest) ([]*store.Backup, error) {
	out := op.Output("backup")
	var bs []*store.Backup
	err := m.e.OperateLocked(ctx, op, engine.LockedOperation{
		App: req.App, Owner: req.Owner, Lock: "backup", Wait: true, NeedApp: true,
		LockErr:     func(err error) error { return fmt.Errorf("wait for the lock of %s: %w", req.App, err) },
		NotDeployed: func() error { return fmt.Errorf("back up %s: %w", req.App, engine.ErrNotDeployed) },
	}, func(ctx context.Context, _ *store.App, rel *store.Release) error {
		var err error
		bs, err = m.createBackups(ctx, rel, req, out)
		for _, b := range bs {
			if b.Status == store.BackupOK {
				op.Emit(engine.Event{Type: engine.EventInfo, Text: fmt.Sprintf("%s  %s %s  %s", b.ID, b.Kind, b.Target, fsutil.HumanBytes(b.Size))})
			}
		}
		return err
	})
	return bs, err
}

// VerifyOp runs VerifyBackup as an operation streaming its output.
func (m *Manager) VerifyOp(app, id string) *engine.Op {
	return m.e.StartOp(func(ctx context.Context, op *engine.Op) (string, error) {
		out := op.Output("verify")
		if _, err := m.VerifyBackup(ctx, app, id, out); err != nil {
			return store.DeployFailed, fmt.Errorf("verify %s: %w", id, err)
		}
		op.Emit(engine.Event{Type: engine.EventInfo, Text: id + " restores and holds data"})
		return store.DeploySucceeded, nil
	})
}
