package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// ErrMigrateFail is the failure HELLO_MIGRATE_FAIL=1 asks for.
var ErrMigrateFail = errors.New("simulated migration failure")

// schema is $DATA/schema.json: the migrations applied so far, in order.
type schema struct {
	Version int       `json:"version"` // number of the last applied migration
	Applied []applied `json:"applied"`
}

type applied struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	Release     string    `json:"release"`
	AppliedAt   time.Time `json:"applied_at"`
}

// runMigrate applies the migrations not applied yet, under an exclusive
// non-blocking lock on $DATA/migrate.lock. A second migrate running at the
// same time records CONCURRENT in $DATA/migrate-conflicts.log and exits 1.
// $DATA/migrate.log gets "start <release> <unix-nanos>" once the lock is
// taken and "end <release> <unix-nanos>" just before it is released (also
// after a failure), so the lines bracket the time the lock was held.
func runMigrate(ctx context.Context, e *env, _ *slog.Logger) error {
	if err := e.ensureDataDir(); err != nil {
		return err
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	rel := field(e.release)
	holder := fmt.Sprintf("migrate pid %d release %s instance %s", os.Getpid(), rel, field(e.instance))
	lock, err := tryLock(e.data("migrate.lock"), holder)
	if errors.Is(err, ErrLocked) {
		line := fmt.Sprintf("CONCURRENT %s %d", rel, nanos())
		if lerr := appendLine(e.data("migrate-conflicts.log"), line); lerr != nil {
			err = errors.Join(err, fmt.Errorf("record conflict: %w", lerr))
		}
		return fmt.Errorf("another migration is running, refusing to run two at once: %w", err)
	}
	if err != nil {
		return err
	}
	defer lock.Close()

	if err := appendLine(e.data("migrate.log"), fmt.Sprintf("start %s %d", rel, nanos())); err != nil {
		return fmt.Errorf("write migrate.log: %w", err)
	}
	err = migrateLocked(ctx, e, ms)
	if lerr := appendLine(e.data("migrate.log"), fmt.Sprintf("end %s %d", rel, nanos())); lerr != nil {
		err = errors.Join(err, fmt.Errorf("write migrate.log: %w", lerr))
	}
	return err
}

func migrateLocked(ctx context.Context, e *env, ms []migration) error {
	if e.migrateSleep > 0 {
		fmt.Printf("migrate: holding the lock for %s (HELLO_MIGRATE_SLEEP)\n", e.migrateSleep)
		t := time.NewTimer(e.migrateSleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("interrupted while holding the lock, nothing applied: %w", ctx.Err())
		}
	}
	if e.migrateFail {
		return exitWith(2, fmt.Errorf("HELLO_MIGRATE_FAIL=1 is set, so this migration fails on purpose; nothing was applied: %w", ErrMigrateFail))
	}

	path := e.data("schema.json")
	s, err := readSchema(path)
	if err != nil {
		return err
	}
	done := make(map[string]bool, len(s.Applied))
	for _, a := range s.Applied {
		done[a.ID] = true
	}
	n := 0
	for _, m := range ms {
		if done[m.ID] {
			continue
		}
		s.Applied = append(s.Applied, applied{
			ID: m.ID, Description: m.Description, Release: field(e.release), AppliedAt: time.Now().UTC(),
		})
		s.Version = max(s.Version, m.Number)
		if err := writeSchema(path, s); err != nil {
			return err
		}
		fmt.Printf("migrate: applied %s: %s\n", m.ID, m.Description)
		n++
	}
	if n == 0 {
		fmt.Printf("migrate: nothing to apply, schema is at version %d (%d migrations applied)\n", s.Version, len(s.Applied))
		return nil
	}
	fmt.Printf("migrate: applied %d migration(s), schema is at version %d\n", n, s.Version)
	return nil
}

func readSchema(path string) (*schema, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &schema{Applied: []applied{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &s, nil
}

func writeSchema(path string, s *schema) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write schema: %w", err)
	}
	return nil
}
