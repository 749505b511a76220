package backup

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
func (m *Manager) ImportBackup(ctx context.Context, app, file string) (*store.Backup, error) {
	if !filepath.IsAbs(file) {
		return nil, fmt.Errorf("%q: give the archive's absolute path on the server", file)
	}
	if _, err := m.st.GetApp(ctx, app); err != nil {
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
	var man Manifest
	if err := json.Unmarshal(raw, &man); err != nil || man.ID == "" || man.SHA256 == "" {
		return nil, fmt.Errorf("%s: %w: its manifest %s is not valid (%v)", file, ErrNotBackup, manifestPath(b), err)
	}
	switch {
	case man.File != filepath.Base(file):
		return nil, fmt.Errorf("%s: the manifest %s describes %s, not this file", file, manifestPath(b), man.File)
	case man.App != app:
		return nil, fmt.Errorf("%s is a backup of app %s, not %s: restore it with -a %s", file, man.App, app, man.App)
	case man.Kind != BackupVolume && man.Kind != BackupPostgres:
		return nil, fmt.Errorf("%s: the manifest names an unknown kind %q", file, man.Kind)
	}
	b = &store.Backup{ID: man.ID, App: app, Kind: man.Kind, Target: man.Target, Path: file, Size: man.Size, SHA256: man.SHA256,
		Status: store.BackupOK, Trigger: "import", Release: man.Release, CreatedAt: man.CreatedAt, FinishedAt: time.Now().UTC()}
	if err := checkArchive(b); err != nil {
		return nil, err
	}
	if old, err := m.st.GetBackup(ctx, man.ID); err == nil {
		switch {
		case old.App != app || (old.SHA256 != man.SHA256 && old.Status == store.BackupOK):
			return nil, fmt.Errorf("backup id %s is already used by another archive (%s)", man.ID, old.Path)
		case old.Status == store.BackupOK && checkArchive(old) == nil:
			return old, nil // the same archive, already known and intact
		}
		// Known, but its archive is gone or damaged: this copy replaces it.
		// It stays an import (never a scheduled backup's): retention must
		// not delete the user's own copy.
		b.CreatedAt = old.CreatedAt
	}
	if err := m.st.PutBackup(ctx, b); err != nil {
		return nil, err
	}
	m.st.AddEvent(ctx, store.AppEvent{App: app, Kind: store.EventBackup, Message: fmt.Sprintf("imported backup %s from %s (checksum ok)", b.ID, file)})
	return b, nil
}
