package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// DashboardUser is a user of the web dashboard. Hash is a bcrypt hash.
type DashboardUser struct {
	Name      string
	Role      string
	Hash      string
	CreatedAt time.Time
	// Credential is new with every password: a digest of the hash, which
	// says nothing of the password (lists carry it, never the hash).
	Credential string
}

// credential is DashboardUser.Credential of a hash.
func credential(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:8])
}

// PutDashboardUser creates a user or replaces its role and password hash.
func (s *Store) PutDashboardUser(ctx context.Context, u DashboardUser) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO dashboard_users (name, role, hash, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET role = excluded.role, hash = excluded.hash`, u.Name, u.Role, u.Hash, now())
	if err != nil {
		return fmt.Errorf("dashboard user %s: %w", u.Name, err)
	}
	return nil
}

// GetDashboardUser returns the user name, or ErrNotFound.
func (s *Store) GetDashboardUser(ctx context.Context, name string) (*DashboardUser, error) {
	var u DashboardUser
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT name, role, hash, created_at FROM dashboard_users WHERE name = ?`, name).Scan(&u.Name, &u.Role, &u.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("dashboard user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard user %s: %w", name, err)
	}
	u.CreatedAt = time.Unix(0, at)
	u.Credential = credential(u.Hash)
	return &u, nil
}

// ListDashboardUsers returns every user, by name.
func (s *Store) ListDashboardUsers(ctx context.Context) ([]DashboardUser, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, hash, created_at FROM dashboard_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list dashboard users: %w", err)
	}
	defer rows.Close()
	var out []DashboardUser
	for rows.Next() {
		var u DashboardUser
		var at int64
		if err := rows.Scan(&u.Name, &u.Role, &u.Hash, &at); err != nil {
			return nil, err
		}
		u.Credential, u.Hash = credential(u.Hash), ""
		u.CreatedAt = time.Unix(0, at)
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteDashboardUser removes a user (ErrNotFound when there is none).
func (s *Store) DeleteDashboardUser(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM dashboard_users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("dashboard user %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("dashboard user %s: %w", name, ErrNotFound)
	}
	return nil
}

// AuditEntry is one recorded dashboard action.
type AuditEntry struct {
	ID      int64
	At      time.Time
	User    string
	IP      string
	Action  string // "rollback", "login", ...
	Target  string // "app hello to v2"
	Outcome string // "ok", "refused: ...", "failed: ..."
}

// AddAudit records an action.
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO dashboard_audit (at, user, ip, action, target, outcome) VALUES (?, ?, ?, ?, ?, ?)`,
		now(), e.User, e.IP, e.Action, e.Target, e.Outcome)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// ListAudit returns the latest limit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, user, ip, action, target, outcome FROM dashboard_audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.User, &e.IP, &e.Action, &e.Target, &e.Outcome); err != nil {
			return nil, err
		}
		e.At = time.Unix(0, at)
		out = append(out, e)
	}
	return out, rows.Err()
}
