package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// ConfigVar is one value set with `moorage config set`. A secret's Value is
// sealed (encrypted); the store never sees it in the clear.
type ConfigVar struct {
	Key    string
	Value  []byte
	Secret bool
}

// GetConfig returns app's config values by key.
func (s *Store) GetConfig(ctx context.Context, app string) ([]ConfigVar, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value, secret FROM config WHERE app = ? ORDER BY key`, app)
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", app, err)
	}
	defer rows.Close()
	var out []ConfigVar
	for rows.Next() {
		var v ConfigVar
		if err := rows.Scan(&v.Key, &v.Value, &v.Secret); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetConfig sets values and removes the keys in unset, in one transaction.
func (s *Store) SetConfig(ctx context.Context, app string, set []ConfigVar, unset []string) error {
	sort.Slice(set, func(i, j int) bool { return set[i].Key < set[j].Key })
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, v := range set {
			if _, err := tx.ExecContext(ctx, `INSERT INTO config (app, key, value, secret) VALUES (?, ?, ?, ?) ON CONFLICT(app, key) DO UPDATE SET value = excluded.value, secret = excluded.secret`, app, v.Key, v.Value, v.Secret); err != nil {
				return fmt.Errorf("set %s of %s: %w", v.Key, app, err)
			}
		}
		for _, k := range unset {
			if _, err := tx.ExecContext(ctx, `DELETE FROM config WHERE app = ? AND key = ?`, app, k); err != nil {
				return fmt.Errorf("unset %s of %s: %w", k, app, err)
			}
		}
		return nil
	})
}
