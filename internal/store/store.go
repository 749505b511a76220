// Package store keeps moorage's state in SQLite: apps, immutable releases,
// deploys with a journal of steps, per-app locks, instances and events.
//
// The database runs in WAL mode with synchronous=FULL: a committed
// transaction survives the server being killed at any point, which is what
// the engine's crash recovery relies on. Schema changes are versioned
// migrations applied at Open.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("not found")
	ErrLocked   = errors.New("locked")
	ErrConflict = errors.New("conflict")
)

// Store is the SQLite state store. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
}

// Open opens (creating if needed) the database at path and applies pending
// schema migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	if err := restrict(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"busy_timeout(10000)",
		"foreign_keys(ON)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One connection: SQLite serializes writers anyway, and one connection
	// makes every transaction see the previous one without busy retries.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// SQLite created the -wal and -shm files with the database's mode;
	// those of an older moorage (0644) are fixed here.
	if err := restrict(path); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// restrict makes the database and its -wal and -shm files readable by
// their owner only. The database is created 0600 before SQLite opens it:
// SQLite gives the -wal and -shm files the mode of the database file, so
// they are never readable by others, not even for a moment (the umask
// alone would leave them 0644).
func restrict(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restrict store permissions: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func now() int64 { return time.Now().UnixNano() }

func toTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func nullTime(ns sql.NullInt64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return toTime(ns.Int64)
}
