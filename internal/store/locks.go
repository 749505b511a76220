package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lock is the per-app deploy lock.
type Lock struct {
	App         string
	Owner       string // who: "alice@laptop (pid 123)"
	Operation   string // what: "deploy v7", "rollback to v3"
	DeployID    int64
	Server      string // the server process holding it
	AcquiredAt  time.Time
	HeartbeatAt time.Time
}

// LockedError says who holds a lock and since when.
type LockedError struct{ Lock Lock }

func (e *LockedError) Error() string {
	l := e.Lock
	return fmt.Sprintf("%s is locked: %s by %s since %s (%s ago)", l.App, l.Operation, l.Owner,
		l.AcquiredAt.Local().Format(time.DateTime), time.Since(l.AcquiredAt).Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// AcquireLock takes app's lock for owner, or fails with a *LockedError
// naming the holder.
func (s *Store) AcquireLock(ctx context.Context, l Lock) error {
	t := now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := getLock(ctx, tx, l.App)
		if err == nil {
			return &LockedError{Lock: *cur}
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO locks (app, owner, operation, deploy_id, server, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			l.App, l.Owner, l.Operation, nullInt(l.DeployID), l.Server, t, t)
		if err != nil {
			return fmt.Errorf("take lock of %s: %w", l.App, err)
		}
		return nil
	})
}

// UpdateLock records the deploy a lock belongs to and its operation.
func (s *Store) UpdateLock(ctx context.Context, app, server string, deployID int64, operation string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE locks SET deploy_id = ?, operation = ? WHERE app = ? AND server = ?`, nullInt(deployID), operation, app, server)
	return err
}

// ReleaseLock drops app's lock if server holds it.
func (s *Store) ReleaseLock(ctx context.Context, app, server string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM locks WHERE app = ? AND server = ?`, app, server)
	if err != nil {
		return fmt.Errorf("release lock of %s: %w", app, err)
	}
	return nil
}

// GetLock returns app's lock, or ErrNotFound when it is free.
func (s *Store) GetLock(ctx context.Context, app string) (*Lock, error) {
	return getLock(ctx, s.db, app)
}

// ClearStaleLocks removes every lock not held by server (at start, locks of
// earlier server processes are stale) and returns them.
func (s *Store) ClearStaleLocks(ctx context.Context, server string) ([]Lock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT app, owner, operation, COALESCE(deploy_id, 0), server, acquired_at, heartbeat_at FROM locks WHERE server != ?`, server)
	if err != nil {
		return nil, err
	}
	var out []Lock
	for rows.Next() {
		l, err := scanLock(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *l)
	}
	rows.Close()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM locks WHERE server != ?`, server); err != nil {
		return nil, fmt.Errorf("clear stale locks: %w", err)
	}
	return out, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getLock(ctx context.Context, q querier, app string) (*Lock, error) {
	l, err := scanLock(q.QueryRowContext(ctx, `SELECT app, owner, operation, COALESCE(deploy_id, 0), server, acquired_at, heartbeat_at FROM locks WHERE app = ?`, app))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return l, err
}

func scanLock(r scanner) (*Lock, error) {
	var l Lock
	var acq, hb int64
	if err := r.Scan(&l.App, &l.Owner, &l.Operation, &l.DeployID, &l.Server, &acq, &hb); err != nil {
		return nil, err
	}
	l.AcquiredAt, l.HeartbeatAt = toTime(acq), toTime(hb)
	return &l, nil
}
