package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Notifier is a place deploy outcomes and problems are sent to. Its target
// (URL, signing key, SMTP credentials) is sealed with the server's secrets
// key; Label says where it goes without any secret.
type Notifier struct {
	ID          int64
	App         string // "" = every app of the server
	Kind        string // "webhook", "slack" or "email"
	Label       string
	Target      []byte // sealed
	CreatedAt   time.Time
	LastOKAt    time.Time
	LastError   string
	LastErrorAt time.Time
	Failures    int // consecutive failed deliveries
}

// Failing reports whether the notifier's last delivery failed.
func (n *Notifier) Failing() bool {
	return n.LastError != "" && n.LastErrorAt.After(n.LastOKAt)
}

const notifierCols = `id, app, kind, label, target, created_at, last_ok_at, last_error, last_error_at, failures`

// AddNotifier stores a notifier and returns its id.
func (s *Store) AddNotifier(ctx context.Context, n Notifier) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO notifiers (app, kind, label, target, created_at) VALUES (?, ?, ?, ?, ?)`,
		n.App, n.Kind, n.Label, n.Target, now())
	if err != nil {
		return 0, fmt.Errorf("add notifier: %w", err)
	}
	return res.LastInsertId()
}

// RemoveNotifier deletes notifier id.
func (s *Store) RemoveNotifier(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM notifiers WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("remove notifier: %w", err)
	}
	return mustAffect(res, fmt.Sprintf("notifier %d", id))
}

// GetNotifier returns notifier id.
func (s *Store) GetNotifier(ctx context.Context, id int64) (*Notifier, error) {
	n, err := scanNotifier(s.db.QueryRowContext(ctx, `SELECT `+notifierCols+` FROM notifiers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("notifier %d: %w", id, ErrNotFound)
	}
	return n, err
}

// ListNotifiers returns the notifiers that get app's notifications: its
// own and the server-wide ones. app "*" lists all.
func (s *Store) ListNotifiers(ctx context.Context, app string) ([]*Notifier, error) {
	q, args := `SELECT `+notifierCols+` FROM notifiers`, []any{}
	if app != "*" {
		q += ` WHERE app = '' OR app = ?`
		args = append(args, app)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list notifiers: %w", err)
	}
	defer rows.Close()
	var out []*Notifier
	for rows.Next() {
		n, err := scanNotifier(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// NotifierDelivered records the outcome of a delivery to notifier id.
func (s *Store) NotifierDelivered(ctx context.Context, id int64, deliveryErr error) error {
	var err error
	if deliveryErr == nil {
		_, err = s.db.ExecContext(ctx, `UPDATE notifiers SET last_ok_at = ?, failures = 0 WHERE id = ?`, now(), id)
	} else {
		msg := deliveryErr.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		_, err = s.db.ExecContext(ctx, `UPDATE notifiers SET last_error = ?, last_error_at = ?, failures = failures + 1 WHERE id = ?`, msg, now(), id)
	}
	return err
}

func scanNotifier(r interface{ Scan(...any) error }) (*Notifier, error) {
	var n Notifier
	var created int64
	var ok, errAt sql.NullInt64
	if err := r.Scan(&n.ID, &n.App, &n.Kind, &n.Label, &n.Target, &created, &ok, &n.LastError, &errAt, &n.Failures); err != nil {
		return nil, err
	}
	n.CreatedAt, n.LastOKAt, n.LastErrorAt = toTime(created), nullTime(ok), nullTime(errAt)
	return &n, nil
}

// NotifyCursor returns the notifier's cursor name (0, false when unset).
func (s *Store) NotifyCursor(ctx context.Context, name string) (int64, bool, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM notify_state WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return v, err == nil, err
}

// SetNotifyCursor stores the notifier's cursor name.
func (s *Store) SetNotifyCursor(ctx context.Context, name string, v int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notify_state (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, v)
	return err
}

// FinishedDeploy is a deploy that ended, for notifications.
type FinishedDeploy struct {
	ID      int64
	App     string
	Kind    string
	Release int
	From    int
	Status  string
	Reason  string
	Owner   string
	EndedAt int64 // unix nanoseconds: the cursor
	// Child is the record that ran for this one (a pipeline's deploy), 0
	// when none.
	Child int64
}

// DeploysEndedAfter returns the deploys that ended after t (unix ns), in
// the order they ended.
func (s *Store) DeploysEndedAfter(ctx context.Context, t int64, limit int) ([]FinishedDeploy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, app, kind, COALESCE(release, 0), COALESCE(from_release, 0), status, reason, owner, ended_at,
		COALESCE((SELECT MIN(c.id) FROM deploys c WHERE c.parent = deploys.id AND deploys.kind = ?), 0)
		FROM deploys WHERE ended_at IS NOT NULL AND ended_at > ? ORDER BY ended_at LIMIT ?`, KindPipeline, t, limit)
	if err != nil {
		return nil, fmt.Errorf("list finished deploys: %w", err)
	}
	defer rows.Close()
	var out []FinishedDeploy
	for rows.Next() {
		var d FinishedDeploy
		if err := rows.Scan(&d.ID, &d.App, &d.Kind, &d.Release, &d.From, &d.Status, &d.Reason, &d.Owner, &d.EndedAt, &d.Child); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// FailedBackup is a backup that failed, for notifications.
type FailedBackup struct {
	ID, App, Kind, Target, Trigger, Error string
	FinishedAt                            int64 // unix nanoseconds: the cursor
}

// BackupsFailedAfter returns the backups that failed after t (unix ns).
func (s *Store) BackupsFailedAfter(ctx context.Context, t int64, limit int) ([]FailedBackup, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, app, kind, target, trigger, error, finished_at FROM backups
		WHERE status = ? AND finished_at IS NOT NULL AND finished_at > ? ORDER BY finished_at LIMIT ?`, BackupFailed, t, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed backups: %w", err)
	}
	defer rows.Close()
	var out []FailedBackup
	for rows.Next() {
		var b FailedBackup
		if err := rows.Scan(&b.ID, &b.App, &b.Kind, &b.Target, &b.Trigger, &b.Error, &b.FinishedAt); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
