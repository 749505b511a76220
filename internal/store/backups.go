package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Backup statuses.
const (
	BackupRunning = "running"
	BackupOK      = "ok"
	BackupFailed  = "failed"
)

// Backup is one backup archive (or a failed attempt at one).
type Backup struct {
	ID          string
	App         string
	Kind        string // "volume" or "postgres"
	Target      string // volume or accessory name
	Path        string // the archive
	Size        int64
	SHA256      string
	Status      string
	Error       string
	Trigger     string // "manual" or "schedule"
	Release     string // the active release when it was made
	CreatedAt   time.Time
	FinishedAt  time.Time
	VerifiedAt  time.Time
	VerifyError string
}

// PutBackup inserts or updates a backup record.
func (s *Store) PutBackup(ctx context.Context, b *Backup) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO backups (id, app, kind, target, path, size, sha256, status, error, trigger, release, created_at, finished_at, verified_at, verify_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET path = excluded.path, size = excluded.size, sha256 = excluded.sha256, status = excluded.status,
			error = excluded.error, finished_at = excluded.finished_at, verified_at = excluded.verified_at, verify_error = excluded.verify_error`,
		b.ID, b.App, b.Kind, b.Target, b.Path, b.Size, b.SHA256, b.Status, b.Error, b.Trigger, b.Release,
		b.CreatedAt.UnixNano(), nullNanos(b.FinishedAt), nullNanos(b.VerifiedAt), b.VerifyError)
	if err != nil {
		return fmt.Errorf("record backup %s: %w", b.ID, err)
	}
	return nil
}

// GetBackup returns a backup by id.
func (s *Store) GetBackup(ctx context.Context, id string) (*Backup, error) {
	b, err := scanBackup(s.db.QueryRowContext(ctx, `SELECT `+backupCols+` FROM backups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("backup %s: %w", id, ErrNotFound)
	}
	return b, err
}

// ListBackups returns app's backups, newest first.
func (s *Store) ListBackups(ctx context.Context, app string) ([]*Backup, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+backupCols+` FROM backups WHERE app = ? ORDER BY created_at DESC`, app)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	defer rows.Close()
	var out []*Backup
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBackup removes a backup record.
func (s *Store) DeleteBackup(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM backups WHERE id = ?`, id)
	return err
}

const backupCols = `id, app, kind, target, path, size, sha256, status, error, trigger, release, created_at, finished_at, verified_at, verify_error`

func scanBackup(r scanner) (*Backup, error) {
	var b Backup
	var created int64
	var finished, verified sql.NullInt64
	if err := r.Scan(&b.ID, &b.App, &b.Kind, &b.Target, &b.Path, &b.Size, &b.SHA256, &b.Status, &b.Error, &b.Trigger, &b.Release, &created, &finished, &verified, &b.VerifyError); err != nil {
		return nil, err
	}
	b.CreatedAt, b.FinishedAt, b.VerifiedAt = toTime(created), nullTime(finished), nullTime(verified)
	return &b, nil
}

func nullNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// SetMaintenance records app's maintenance mode ("" = off; else a JSON
// document the proxy's page is made from).
func (s *Store) SetMaintenance(ctx context.Context, app, m string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET maintenance = ?, updated_at = ? WHERE name = ?`, m, now(), app)
	if err != nil {
		return err
	}
	return mustAffect(res, "app "+app)
}

// ErrStopped: the app's maintenance page is the stopped page of `moorage
// stop` (or of a destroy), which only `moorage start` (or the destroy)
// ends.
var ErrStopped = fmt.Errorf("stopped: %w", ErrConflict)

// SetUserMaintenance is SetMaintenance for `moorage maintenance on|off`:
// in one statement, it changes nothing and returns ErrStopped when the
// recorded mode is a stopped one, so a user's switch racing `moorage
// stop` can never turn a stopped app's page off (which would let a deploy
// start its services).
func (s *Store) SetUserMaintenance(ctx context.Context, app, m string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET maintenance = ?, updated_at = ? WHERE name = ?
		AND (maintenance = '' OR coalesce(json_extract(maintenance, '$.stopped'), 0) = 0)`, m, now(), app)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	if _, err := s.Maintenance(ctx, app); err != nil {
		return err // no such app
	}
	return fmt.Errorf("app %s: %w", app, ErrStopped)
}

// Maintenance returns app's maintenance mode ("" = off).
func (s *Store) Maintenance(ctx context.Context, app string) (string, error) {
	var m string
	err := s.db.QueryRowContext(ctx, `SELECT maintenance FROM apps WHERE name = ?`, app).Scan(&m)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("app %s: %w", app, ErrNotFound)
	}
	return m, err
}
