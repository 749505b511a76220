package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/store"
)

// ErrNotBackup says a file is not a moorage backup archive with its
// manifest.
var ErrNotBackup = errors.New("not a moorage backup")

// ImportBackup registers an archive the store does not know (copied from
// another server, or kept after the store was lost) so that it can be
// restored: its manifest (the .json file next to it) says what it is, and
// its checksum must match the manifest's. The record's trigger is
// "import": retention never deletes it. An archive the store already knows
// returns its record.
func (e *Engine) ImportBackup(ctx context.Context, app, file string) (*store.Backup, error) {
	if !filepath.IsAbs(file) {
		return nil, fmt.Errorf("%q: give the archive's absolute path on the server", file)
	}
	if _, err := e.st.GetApp(ctx, app); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(file, ".tar.gz") && !strings.HasSuffix(file, ".pgdump") {
		return nil, fmt.Errorf("%s: %w: an archive ends in .tar.gz (volume) or .pgdump (postgres)", file, ErrNotBackup)
	}
	b := &store.Backup{Path: file}
	raw, err := os.ReadFile(manifestPath(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: its manifest %s cannot be read (%v); restore it by hand (see docs/operations.md)", file, ErrNotBackup, manifestPath(b), err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.ID == "" || m.SHA256 == "" {
		return nil, fmt.Errorf("%s: %w: its manifest %s is not valid (%v)", file, ErrNotBackup, manifestPath(b), err)
	}
	switch {
	case m.File != filepath.Base(file):
		return nil, fmt.Errorf("%s: the manifest %s describes %s, not this file", file, manifestPath(b), m.File)
	case m.App != app:
		return nil, fmt.Errorf("%s is a backup of app %s, not %s: restore it with -a %s", file, m.App, app, m.App)
	case m.Kind != BackupVolume && m.Kind != BackupPostgres:
		return nil, fmt.Errorf("%s: the manifest names an unknown kind %q", file, m.Kind)
	}
	b = &store.Backup{ID: m.ID, App: app, Kind: m.Kind, Target: m.Target, Path: file, Size: m.Size, SHA256: m.SHA256,
		Status: store.BackupOK, Trigger: "import", Release: m.Release, CreatedAt: m.CreatedAt, FinishedAt: time.Now().UTC()}
	if err := checkArchive(b); err != nil {
		return nil, err
	}
	if old, err := e.st.GetBackup(ctx, m.ID); err == nil {
		switch {
		case old.App != app || (old.SHA256 != m.SHA256 && old.Status == store.BackupOK):
			return nil, fmt.Errorf("backup id %s is already used by another archive (%s)", m.ID, old.Path)
		case old.Status == store.BackupOK && checkArchive(old) == nil:
			return old, nil // the same archive, already known and intact
		}
		// Known, but its archive is gone or damaged: this copy replaces it.
		// It stays an import (never a scheduled backup's): retention must
		// not delete the user's own copy.
		b.CreatedAt = old.CreatedAt
	}
	if err := e.st.PutBackup(ctx, b); err != nil {
		return nil, err
	}
	e.st.AddEvent(ctx, store.Event{App: app, Kind: store.EventBackup, Message: fmt.Sprintf("imported backup %s from %s (checksum ok)", b.ID, file)})
	return b, nil
}
