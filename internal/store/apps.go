package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// App is a named application.
type App struct {
	Name    string
	Runtime string
	// Current is the version of the active release (0: none yet).
	Current int
	// Formation holds replica counts set with `moorage scale`; they override
	// the spec's replicas for the services they name.
	Formation map[string]int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EnsureApp creates app if it does not exist and returns it.
func (s *Store) EnsureApp(ctx context.Context, name, runtime string) (*App, error) {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO apps (name, runtime, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`, name, runtime, t, t)
	if err != nil {
		return nil, fmt.Errorf("create app %s: %w", name, err)
	}
	return s.GetApp(ctx, name)
}

// GetApp returns app, or ErrNotFound.
func (s *Store) GetApp(ctx context.Context, name string) (*App, error) {
	return scanApp(s.db.QueryRowContext(ctx, `SELECT name, runtime, COALESCE(current_release, 0), formation, created_at, updated_at FROM apps WHERE name = ?`, name))
}

// ListApps returns every app by name.
func (s *Store) ListApps(ctx context.Context) ([]*App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, runtime, COALESCE(current_release, 0), formation, created_at, updated_at FROM apps ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var out []*App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetFormation records replica overrides for app (scale).
func (s *Store) SetFormation(ctx context.Context, app string, f map[string]int) error {
	b, _ := json.Marshal(f)
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET formation = ?, updated_at = ? WHERE name = ?`, string(b), now(), app)
	if err != nil {
		return fmt.Errorf("set formation of %s: %w", app, err)
	}
	return mustAffect(res, "app "+app)
}

// SetRuntime records the runtime app's active release uses.
func (s *Store) SetRuntime(ctx context.Context, app, runtime string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE apps SET runtime = ?, updated_at = ? WHERE name = ?`, runtime, now(), app)
	return err
}

type scanner interface{ Scan(...any) error }

func scanApp(r scanner) (*App, error) {
	var a App
	var formation string
	var created, updated int64
	if err := r.Scan(&a.Name, &a.Runtime, &a.Current, &formation, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("app: %w", ErrNotFound)
		}
		return nil, fmt.Errorf("read app: %w", err)
	}
	a.Formation = map[string]int{}
	_ = json.Unmarshal([]byte(formation), &a.Formation)
	a.CreatedAt, a.UpdatedAt = toTime(created), toTime(updated)
	return &a, nil
}

func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// DeleteApp deletes app's records: the app, its releases, deploys and
// their steps, instance records, events, config and secrets, journal and
// notifiers; its backups' records too when backups. The dashboard audit
// keeps its entries; the lock (held by whoever deletes) is released by
// its holder. Deleting an app that does not exist is a no-op.
func (s *Store) DeleteApp(ctx context.Context, app string, backups bool) error {
	stmts := []string{
		`DELETE FROM deploy_steps WHERE deploy_id IN (SELECT id FROM deploys WHERE app = ?)`,
		`DELETE FROM deploys WHERE app = ?`,
		`DELETE FROM releases WHERE app = ?`,
		`DELETE FROM instances WHERE app = ?`,
		`DELETE FROM events WHERE app = ?`,
		`DELETE FROM config WHERE app = ?`,
		`DELETE FROM backup_journal WHERE app = ?`,
		`DELETE FROM notifiers WHERE app = ?`,
		`DELETE FROM apps WHERE name = ?`,
	}
	if backups {
		stmts = append([]string{`DELETE FROM backups WHERE app = ?`}, stmts...)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q, app); err != nil {
				return fmt.Errorf("delete app %s: %w", app, err)
			}
		}
		return nil
	})
}
