package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RegistryLogin is a container registry's credentials (`moorage registry
// login`). Password is sealed with the server's secrets key; the store
// never holds it in clear.
type RegistryLogin struct {
	Host      string // "registry.example.com:5000"
	Username  string
	Password  []byte // sealed
	CreatedAt time.Time
}

// SetRegistryLogin stores the login of l.Host, replacing any before.
func (s *Store) SetRegistryLogin(ctx context.Context, l RegistryLogin) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO registry_logins (host, username, password, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(host) DO UPDATE SET username = excluded.username, password = excluded.password, created_at = excluded.created_at`,
		l.Host, l.Username, l.Password, now())
	if err != nil {
		return fmt.Errorf("store registry login: %w", err)
	}
	return nil
}

// RemoveRegistryLogin deletes the login of host.
func (s *Store) RemoveRegistryLogin(ctx context.Context, host string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM registry_logins WHERE host = ?`, host)
	if err != nil {
		return fmt.Errorf("remove registry login: %w", err)
	}
	return mustAffect(res, "registry login for "+host)
}

// GetRegistryLogin returns the login of host (ErrNotFound when none).
func (s *Store) GetRegistryLogin(ctx context.Context, host string) (*RegistryLogin, error) {
	l, err := scanRegistryLogin(s.db.QueryRowContext(ctx, `SELECT host, username, password, created_at FROM registry_logins WHERE host = ?`, host))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry login for %s: %w", host, ErrNotFound)
	}
	return l, err
}

// ListRegistryLogins returns every login, by host.
func (s *Store) ListRegistryLogins(ctx context.Context) ([]*RegistryLogin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT host, username, password, created_at FROM registry_logins ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("list registry logins: %w", err)
	}
	defer rows.Close()
	var out []*RegistryLogin
	for rows.Next() {
		l, err := scanRegistryLogin(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func scanRegistryLogin(r interface{ Scan(...any) error }) (*RegistryLogin, error) {
	var l RegistryLogin
	var created int64
	if err := r.Scan(&l.Host, &l.Username, &l.Password, &created); err != nil {
		return nil, err
	}
	l.CreatedAt = toTime(created)
	return &l, nil
}
