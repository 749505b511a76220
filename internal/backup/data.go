package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// Volume backups are consistent because every instance that mounts the
// volume is paused (SIGSTOP of its process group; docker pause) while the
// archive is written, and resumed right after: nothing writes meanwhile,
// and requests to a paused web instance wait rather than fail.
func (m *Manager) backupVolume(ctx context.Context, rel *store.Release, volume string, b *store.Backup, out io.Writer) error {
	rt, err := m.e.Runtime(rel.Runtime)
	if err != nil {
		return err
	}
	pack, err := m.volumeSource(ctx, rel, rt, volume)
	if err != nil {
		return err
	}
	ins, err := m.e.InstancesMounting(ctx, rel, volume)
	if err != nil {
		return err
	}
	resume, err := m.pauseAll(ctx, rel.App, rt, ins, out)
	if err != nil {
		return err
	}
	m.e.Failpoint("backup:paused")
	start := time.Now()
	var files int
	where := ""
	err = writeArchive(b, func(w io.Writer) error {
		var st archive.Stats
		var err error
		st, where, err = pack(w, archive.PackOptions{KeepOwner: true, SkipSpecial: true,
			Skipped: func(rel string) { fmt.Fprintf(out, "skipped %s (not a file, directory or symlink)\n", rel) }})
		files = st.Files
		return err
	})
	resume()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d entries archived%s; writers paused for %s\n", files, where, time.Since(start).Round(time.Millisecond))
	return nil
}

// volumePacker writes a volume's archive; where says where it was read
// ("" on the server, " from NODE" for a runtime's node).
type volumePacker func(w io.Writer, o archive.PackOptions) (st archive.Stats, where string, err error)

// volumeSource is how a volume's content is read for a backup: from its
// directory on the server, or, for a runtime whose volumes are on its
// nodes (runtime.VolumeArchiver: swarm), from the tar stream the runtime
// reads where the volume is, repacked into the same archive.
func (m *Manager) volumeSource(ctx context.Context, rel *store.Release, rt runtime.Runtime, volume string) (volumePacker, error) {
	if va, ok := rt.(runtime.VolumeArchiver); ok {
		return func(w io.Writer, o archive.PackOptions) (archive.Stats, string, error) {
			content, node, err := va.ArchiveVolume(ctx, rel.App, volume)
			if err != nil {
				return archive.Stats{}, "", err
			}
			defer content.Close()
			st, err := archive.Repack(content, w, o)
			return st, " from " + node, err
		}, nil
	}
	dir, err := rt.VolumePath(ctx, rel.App, volume)
	if err != nil {
		return nil, err
	}
	return func(w io.Writer, o archive.PackOptions) (archive.Stats, string, error) {
		st, err := archive.PackWith(dir, w, o)
		return st, "", err
	}, nil
}

// restoreVolume replaces a volume's content with a backup's. The instances
// that mount it are stopped by the restore plan before, and started again
// after. The archive is unpacked beside the volume first (a bad archive
// never touches it), then the content is swapped by renames, each phase
// journaled in the store before it starts: a server killed in the middle
// puts the volume back as it was at its next start (recoverRestores).
func (m *Manager) restoreVolume(ctx context.Context, rel *store.Release, b *store.Backup, out io.Writer) error {
	rt, err := m.e.Runtime(rel.Runtime)
	if err != nil {
		return err
	}
	if va, ok := rt.(runtime.VolumeArchiver); ok {
		return m.restoreRemoteVolume(ctx, rel, va, b, out)
	}
	dir, err := rt.VolumePath(ctx, rel.App, b.Target)
	if err != nil {
		return err
	}
	// An earlier restore whose undo failed left the volume mid-swap, its
	// previous content beside it: put it back first, or refuse (the
	// scratch directories below hold what must not be lost).
	if v, err := m.st.GetJournal(ctx, rel.App, store.JournalRestore); err == nil {
		if _, _, err := m.undoRestore(ctx, rel.App, v); err != nil {
			return fmt.Errorf("an earlier restore left a volume half-swapped, and %w; move the contents back by hand, then restore again", err)
		}
		fmt.Fprintf(out, "put back a volume an earlier restore had left half-swapped\n")
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	j := &restoreJournal{Backup: b.ID, Volume: b.Target, Dir: dir,
		Stage: filepath.Join(parent, "."+base+"-moorage-restore"), Old: filepath.Join(parent, "."+base+"-moorage-old"), Phase: phaseUnpack}
	// The phase changes only once the journal holds it: an undo after a
	// failed write starts from what was last recorded.
	save := func(phase string) error { return j.advance(ctx, m.st, rel.App, phase) }
	// Leftovers of a restore whose journal is gone (it is deleted only
	// after them) are garbage.
	os.RemoveAll(j.Stage)
	os.RemoveAll(j.Old)
	if err := save(phaseUnpack); err != nil {
		return err
	}
	abort := func(err error) error {
		if uerr := undoSwap(j, save); uerr != nil {
			m.raise(ctx, rel.App, fmt.Sprintf("restore of %s failed (%v) and volume %s could not be put back as it was: %v (the next server start retries)", b.ID, err, b.Target, uerr))
			return fmt.Errorf("%w; putting the volume back failed too: %v", err, uerr)
		}
		m.st.DeleteJournal(context.WithoutCancel(ctx), rel.App, store.JournalRestore)
		return err
	}
	if err := os.Mkdir(j.Stage, 0o700); err != nil {
		return abort(err)
	}
	if err := os.Mkdir(j.Old, 0o700); err != nil {
		return abort(err)
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return abort(err)
	}
	st, err := archive.UnpackWith(f, j.Stage, archive.Limits{}, os.Geteuid() == 0)
	f.Close()
	if err != nil {
		return abort(fmt.Errorf("unpack %s: %w", b.Path, err))
	}
	if err := save(phaseSwapOut); err != nil {
		return abort(err)
	}
	if err := moveEntries(dir, j.Old); err != nil {
		return abort(err)
	}
	m.e.Failpoint("restore:swap")
	if err := save(phaseSwapIn); err != nil {
		return abort(err)
	}
	if err := moveEntries(j.Stage, dir); err != nil {
		return abort(err)
	}
	if err := save(phaseDone); err != nil {
		return abort(err)
	}
	cleanupSwap(j)
	if err := m.st.DeleteJournal(context.WithoutCancel(ctx), rel.App, store.JournalRestore); err != nil {
		m.log.Warn("forget a finished restore", "app", rel.App, "err", err)
	}
	fmt.Fprintf(out, "restored %d entries of %s into volume %s\n", st.Files, b.ID, b.Target)
	return nil
}

// Phases of a volume restore, journaled before each starts.
const (
	phaseUnpack  = "unpack"   // the archive goes into Stage; the volume is untouched
	phaseSwapOut = "swap-out" // the volume's entries move to Old
	phaseSwapIn  = "swap-in"  // the Stage's entries move into the volume
	phaseUndoOut = "undo-out" // undoing: the volume's (new) entries go back to Stage
	phaseUndoIn  = "undo-in"  // undoing: Old's entries go back into the volume
	phaseDone    = "done"     // swapped; Stage and Old are left to remove
)

// restoreJournal is what the journal keeps of a volume restore.
type restoreJournal struct {
	Backup string `json:"backup"`
	Volume string `json:"volume"`
	Dir    string `json:"dir"`   // the volume's directory
	Stage  string `json:"stage"` // the archive unpacked
	Old    string `json:"old"`   // the volume's previous content
	Phase  string `json:"phase"`
	// Runtime is set for a volume that is not on the server (swarm): Old
	// is then an archive of its previous content, on the server, and the
	// runtime replaces the content where the volume is (data_remote.go).
	Runtime string `json:"runtime,omitempty"`
}

// advance records the restore in phase in app's journal, and only then
// moves j to it: an undo after a failed write starts from what was last
// recorded.
func (j *restoreJournal) advance(ctx context.Context, st *store.Store, app, phase string) error {
	next := *j
	next.Phase = phase
	v, _ := json.Marshal(&next)
	if err := st.PutJournal(context.WithoutCancel(ctx), app, store.JournalRestore, string(v)); err != nil {
		return err
	}
	j.Phase = phase
	return nil
}

// undoSwap puts a volume back as it was before an interrupted or failed
// restore, from any phase but done, journaling its own phases (each step is
// a rename of whole entries: it can itself be interrupted and resumed).
// Stage and Old are removed.
func undoSwap(j *restoreJournal, save func(phase string) error) error {
	switch j.Phase {
	case phaseUnpack, phaseDone:
	case phaseSwapOut:
		// The volume holds only what was not moved out yet.
		if err := save(phaseUndoIn); err != nil {
			return err
		}
		if err := moveEntries(j.Old, j.Dir); err != nil {
			return err
		}
	case phaseSwapIn, phaseUndoOut, phaseUndoIn:
		if j.Phase != phaseUndoIn {
			// The volume holds only restored entries: back to Stage.
			if err := save(phaseUndoOut); err != nil {
				return err
			}
			if err := moveEntries(j.Dir, j.Stage); err != nil {
				return err
			}
		}
		if err := save(phaseUndoIn); err != nil {
			return err
		}
		if err := moveEntries(j.Old, j.Dir); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown restore phase %q", j.Phase)
	}
	cleanupSwap(j)
	return nil
}

// cleanupSwap removes a restore's scratch directories.
func cleanupSwap(j *restoreJournal) {
	os.RemoveAll(j.Stage)
	os.RemoveAll(j.Old)
}

// moveEntries moves every entry of src into dst (same filesystem). A src
// that does not exist has nothing to move.
func moveEntries(src, dst string) error {
	entries, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, en := range entries {
		if err := os.Rename(filepath.Join(src, en.Name()), filepath.Join(dst, en.Name())); err != nil {
			return err
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if err := fsutil.SyncDir(dst); err != nil {
		return err
	}
	return fsutil.SyncDir(src)
}

// verifyVolume unpacks a backup into a scratch directory and checks that it
// holds what the archive says.
func (m *Manager) verifyVolume(ctx context.Context, b *store.Backup, out io.Writer) error {
	scratch, err := os.MkdirTemp(filepath.Join(m.dataDir), "verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := archive.UnpackWith(f, scratch, archive.Limits{}, false)
	if err != nil {
		return fmt.Errorf("unpack into a scratch directory: %w", err)
	}
	if st.Files == 0 {
		return errors.New("the archive is empty")
	}
	fmt.Fprintf(out, "unpacked %d entries (%s) into a scratch directory\n", st.Files, fsutil.HumanBytes(st.Bytes))
	return nil
}
