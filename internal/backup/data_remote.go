package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// Phases of a restore of a volume that is not on the server, journaled
// before each starts (with phaseDone).
const (
	phaseSave        = "save"         // the volume's content is archived into Old; the volume is untouched
	phaseReplace     = "replace"      // the runtime replaces the volume's content with the backup's
	phaseUndoReplace = "undo-replace" // undoing: the runtime puts Old's content back
)

// restoreRemoteVolume is restoreVolume for a runtime whose volumes are not
// on the server (swarm). The volume's current content is archived first,
// into a file on the server (Old), then the runtime replaces the content
// with the backup's where the volume is; each phase is journaled before
// it starts, and a restore that fails, or that a crash interrupted (at
// the next start: recoverRestores), is undone by replacing the content
// with Old's. The instances that mount the volume are stopped by the
// restore plan before, and started after.
func (m *Manager) restoreRemoteVolume(ctx context.Context, rel *store.Release, va runtime.VolumeArchiver, b *store.Backup, out io.Writer) error {
	if v, err := m.st.GetJournal(ctx, rel.App, store.JournalRestore); err == nil {
		if _, _, err := m.undoRestore(ctx, rel.App, v); err != nil {
			return fmt.Errorf("an earlier restore left a volume half-replaced, and %w; then restore again", err)
		}
		fmt.Fprintf(out, "put back a volume an earlier restore had left half-replaced\n")
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	dir := filepath.Join(m.dataDir, "restore", rel.App)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	j := &restoreJournal{Backup: b.ID, Volume: b.Target, Runtime: rel.Runtime, Old: filepath.Join(dir, b.Target+"-before-"+b.ID+".tar.gz")}
	save := func(phase string) error { return j.advance(ctx, m.st, rel.App, phase) }
	if err := save(phaseSave); err != nil {
		return err
	}
	abort := func(err error) error {
		if uerr := m.undoRemote(context.WithoutCancel(ctx), rel.App, j, save); uerr != nil {
			m.raise(ctx, rel.App, fmt.Sprintf("restore of %s failed (%v) and volume %s could not be put back as it was: %v; its previous content is in %s (the next server start retries)", b.ID, err, b.Target, uerr, j.Old))
			return fmt.Errorf("%w; putting the volume back failed too: %v (its previous content is in %s)", err, uerr, j.Old)
		}
		m.st.DeleteJournal(context.WithoutCancel(ctx), rel.App, store.JournalRestore)
		return err
	}
	// The content as it is, first: what an undo puts back.
	where, err := saveVolume(ctx, va, rel.App, b.Target, j.Old)
	if err != nil {
		return abort(fmt.Errorf("archive the volume's current content before replacing it: %w", err))
	}
	fmt.Fprintf(out, "archived the current content of volume %s on %s (put back if the restore fails)\n", b.Target, where)
	if err := save(phaseReplace); err != nil {
		return abort(err)
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return abort(err)
	}
	where, err = va.ReplaceVolume(ctx, rel.App, b.Target, f)
	f.Close()
	if err != nil {
		return abort(err)
	}
	m.e.Failpoint("restore:swap")
	if err := save(phaseDone); err != nil {
		return abort(err)
	}
	os.Remove(j.Old)
	if err := m.st.DeleteJournal(context.WithoutCancel(ctx), rel.App, store.JournalRestore); err != nil {
		m.log.Warn("forget a finished restore", "app", rel.App, "err", err)
	}
	fmt.Fprintf(out, "restored %s into volume %s on %s\n", b.ID, b.Target, where)
	return nil
}

// saveVolume archives a volume's content, where it is, into the file
// path on the server (written whole and synced, or not at all).
func saveVolume(ctx context.Context, va runtime.VolumeArchiver, app, volume, path string) (string, error) {
	content, where, err := va.ArchiveVolume(ctx, app, volume)
	if err != nil {
		return "", err
	}
	defer content.Close()
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	_, err = archive.Repack(content, f, archive.PackOptions{KeepOwner: true, SkipSpecial: true})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = fsutil.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return where, nil
}

// undoRemote puts a volume that is not on the server back as it was
// before an interrupted or failed restore, from the phase journaled:
// before the replacement began, nothing changed; after, the runtime
// replaces the content with Old's (again, if an undo was interrupted).
// Old is removed once it is not needed.
func (m *Manager) undoRemote(ctx context.Context, app string, j *restoreJournal, save func(phase string) error) error {
	switch j.Phase {
	case phaseSave, phaseDone:
	case phaseReplace, phaseUndoReplace:
		rt, err := m.e.Runtime(j.Runtime)
		if err != nil {
			return err
		}
		va, ok := rt.(runtime.VolumeArchiver)
		if !ok {
			return fmt.Errorf("the %s runtime cannot replace a volume's content", j.Runtime)
		}
		if err := save(phaseUndoReplace); err != nil {
			return err
		}
		f, err := os.Open(j.Old)
		if err != nil {
			return err
		}
		_, err = va.ReplaceVolume(ctx, app, j.Volume, f)
		f.Close()
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown restore phase %q", j.Phase)
	}
	os.Remove(j.Old + ".partial")
	os.Remove(j.Old)
	return nil
}
