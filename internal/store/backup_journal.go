package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Backup journal keys: what the engine writes down before it acts, so a
// server killed meanwhile finds it at the next start.
const (
	JournalPaused   = "paused"   // instances paused for a consistent copy
	JournalRestore  = "restore"  // a volume restore swapping content
	JournalSchedule = "schedule" // the last schedule slot handled
)

// JournalEntry is one value of the backup journal.
type JournalEntry struct {
	App   string
	Key   string
	Value string // JSON, the engine's own
}

// PutJournal records app's value under key, replacing the previous one.
func (s *Store) PutJournal(ctx context.Context, app, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO backup_journal (app, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(app, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, app, key, value, now())
	if err != nil {
		return fmt.Errorf("journal %s of %s: %w", key, app, err)
	}
	return nil
}

// GetJournal returns app's value under key, or ErrNotFound.
func (s *Store) GetJournal(ctx context.Context, app, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM backup_journal WHERE app = ? AND key = ?`, app, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("journal %s of %s: %w", key, app, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("journal %s of %s: %w", key, app, err)
	}
	return v, nil
}

// DeleteJournal removes app's value under key (a no-op when there is none).
func (s *Store) DeleteJournal(ctx context.Context, app, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM backup_journal WHERE app = ? AND key = ?`, app, key); err != nil {
		return fmt.Errorf("journal %s of %s: %w", key, app, err)
	}
	return nil
}

// ListJournal returns every app's value under key.
func (s *Store) ListJournal(ctx context.Context, key string) ([]JournalEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT app, key, value FROM backup_journal WHERE key = ? ORDER BY app`, key)
	if err != nil {
		return nil, fmt.Errorf("list journal %s: %w", key, err)
	}
	defer rows.Close()
	var out []JournalEntry
	for rows.Next() {
		var e JournalEntry
		if err := rows.Scan(&e.App, &e.Key, &e.Value); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
