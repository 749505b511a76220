package store

import (
	"context"
	"fmt"
	"time"
)

// Instance states as the engine recorded them.
const (
	InstanceStarting = "starting" // the engine is about to start it (journaled before acting)
	InstanceRunning  = "running"
	InstanceStopped  = "stopped"
	InstanceRemoved  = "removed"
)

// InstanceRecord is the engine's record of an instance it started. The
// runtime is the truth about what runs; these records keep history (crash
// counts, which instances a deploy started) and survive the instance.
type InstanceRecord struct {
	ID        string
	App       string
	Service   string
	Release   string
	Index     int
	Kind      string
	DeployID  int64
	State     string
	Restarts  int
	LastExit  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutInstance inserts or replaces an instance record.
func (s *Store) PutInstance(ctx context.Context, r InstanceRecord) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO instances (id, app, service, release, idx, kind, deploy_id, state, restarts, last_exit, last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, '', ?, ?)
		ON CONFLICT(id) DO UPDATE SET state = excluded.state, deploy_id = excluded.deploy_id, updated_at = excluded.updated_at`,
		r.ID, r.App, r.Service, r.Release, r.Index, r.Kind, nullInt(r.DeployID), r.State, t, t)
	if err != nil {
		return fmt.Errorf("record instance %s: %w", r.ID, err)
	}
	return nil
}

// SetInstanceState updates an instance record's state.
func (s *Store) SetInstanceState(ctx context.Context, id, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE instances SET state = ?, updated_at = ? WHERE id = ?`, state, now(), id)
	return err
}

// RecordCrash counts a crash of an instance.
func (s *Store) RecordCrash(ctx context.Context, id string, exit int, msg string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE instances SET restarts = restarts + 1, last_exit = ?, last_error = ?, updated_at = ? WHERE id = ?`, exit, msg, now(), id)
	return err
}

// ListInstances returns app's instance records (all when app is ""),
// oldest first.
func (s *Store) ListInstances(ctx context.Context, app string) ([]InstanceRecord, error) {
	q := `SELECT id, app, service, release, idx, kind, COALESCE(deploy_id, 0), state, restarts, COALESCE(last_exit, 0), last_error, created_at, updated_at FROM instances`
	var args []any
	if app != "" {
		q += ` WHERE app = ?`
		args = append(args, app)
	}
	q += ` ORDER BY created_at`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []InstanceRecord
	for rows.Next() {
		var r InstanceRecord
		var c, u int64
		if err := rows.Scan(&r.ID, &r.App, &r.Service, &r.Release, &r.Index, &r.Kind, &r.DeployID, &r.State, &r.Restarts, &r.LastExit, &r.LastError, &c, &u); err != nil {
			return nil, err
		}
		r.CreatedAt, r.UpdatedAt = toTime(c), toTime(u)
		out = append(out, r)
	}
	return out, rows.Err()
}
