package main

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// ErrBadMigration reports a migration file whose name or number is wrong.
var ErrBadMigration = errors.New("bad migration")

// migrationFiles are the numbered schema changes, NNN_name.txt. They are
// embedded so the binary alone (or the image) carries them; adding a file
// and deploying (which rebuilds) adds a migration.
//
//go:embed migrations/*.txt
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	ID          string // "001_create_jobs"
	Number      int    // 1
	Description string // the file's first line
}

// loadMigrations returns the embedded migrations ordered by number.
func loadMigrations() ([]migration, error) {
	return readMigrations(migrationFiles, "migrations")
}

func readMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, ent := range entries {
		name := ent.Name()
		if ent.IsDir() || !strings.HasSuffix(name, ".txt") {
			continue
		}
		id := strings.TrimSuffix(name, ".txt")
		num, _, ok := strings.Cut(id, "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: want NNN_name.txt with NNN > 0: %w", name, ErrBadMigration)
		}
		if other, dup := seen[n]; dup {
			return nil, fmt.Errorf("%s and %s have the same number: %w", other, name, ErrBadMigration)
		}
		seen[n] = name
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		desc, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		ms = append(ms, migration{ID: id, Number: n, Description: strings.TrimSpace(desc)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Number < ms[j].Number })
	return ms, nil
}
