package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Backup kinds.
const (
	BackupVolume   = "volume"
	BackupPostgres = "postgres"
)

// ErrBackup wraps every backup failure.
var ErrBackup = errors.New("backup failed")

// BackupRequest asks for backups of an app.
type BackupRequest struct {
	App         string
	Volumes     []string // volume names; with Accessories empty and All: everything
	Accessories []string
	All         bool   // every volume and every accessory with backup: postgres
	To          string // directory; default the spec's backups.to, else <data>/backups/<app>
	Trigger     string // "manual" or "schedule"
	Owner       string
}

// backupDir is where app's archives go.
func (m *Manager) backupDir(app, to string, sp *spec.Spec) string {
	if to != "" {
		return to
	}
	if sp != nil && sp.Backups != nil && sp.Backups.To != "" {
		return sp.Backups.To
	}
	return filepath.Join(m.dataDir, "backups", app)
}

// createBackups backs up what req names of rel, the app's active release
// (read under its lock, backupLocked), one archive per volume or
// accessory, and returns the records (failed ones included: a failure is
// never silent, it is recorded, raised as an event and returned).
func (m *Manager) createBackups(ctx context.Context, rel *store.Release, req BackupRequest, out io.Writer) ([]*store.Backup, error) {
	type job struct{ kind, target string }
	var jobs []job
	if req.All || (len(req.Volumes) == 0 && len(req.Accessories) == 0) {
		for _, v := range plan.VolumeNames(rel.Spec) {
			jobs = append(jobs, job{BackupVolume, v})
		}
		for _, name := range rel.Spec.AccessoryNames() {
			if rel.Spec.Accessories[name].Backup == "postgres" {
				jobs = append(jobs, job{BackupPostgres, name})
			}
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("%s has no volume and no accessory with `backup: postgres`: nothing to back up", req.App)
		}
	}
	known := map[string]bool{}
	for _, v := range plan.VolumeNames(rel.Spec) {
		known[v] = true
	}
	for _, v := range req.Volumes {
		if !known[v] {
			return nil, fmt.Errorf("%s has no volume %q (volumes: %s)", req.App, v, strings.Join(plan.VolumeNames(rel.Spec), ", "))
		}
		jobs = append(jobs, job{BackupVolume, v})
	}
	for _, name := range req.Accessories {
		acc := rel.Spec.Accessories[name]
		switch {
		case acc == nil:
			return nil, fmt.Errorf("%s has no accessory %q", req.App, name)
		case acc.Backup != "postgres":
			return nil, fmt.Errorf("accessory %s has no `backup:` method; add `backup: postgres` to it in moorage.yaml, or back up its volumes with --volume", name)
		}
		jobs = append(jobs, job{BackupPostgres, name})
	}
	dir := m.backupDir(req.App, req.To, rel.Spec)
	var out2 []*store.Backup
	var errs []error
	for _, j := range jobs {
		b, err := m.backupOne(ctx, rel, j.kind, j.target, dir, req.Trigger, out)
		out2 = append(out2, b)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out2, errors.Join(errs...)
}

// backupOne makes one archive and records it, failed or not.
func (m *Manager) backupOne(ctx context.Context, rel *store.Release, kind, target, dir, trigger string, out io.Writer) (*store.Backup, error) {
	now := time.Now().UTC()
	ext := ".tar.gz"
	if kind == BackupPostgres {
		ext = ".pgdump"
	}
	id := fmt.Sprintf("%s-%s-%s-%s", rel.App, kind, target, now.Format("20060102T150405.000Z"))
	id = strings.ReplaceAll(id, ".", "")
	b := &store.Backup{ID: id, App: rel.App, Kind: kind, Target: target, Path: filepath.Join(dir, id+ext),
		Status: store.BackupRunning, Trigger: trigger, Release: rel.ID(), CreatedAt: now}
	if trigger == "" {
		b.Trigger = "manual"
	}
	fail := func(err error) (*store.Backup, error) {
		b.FinishedAt = time.Now().UTC()
		b.Status, b.Error = store.BackupFailed, err.Error()
		wctx := context.WithoutCancel(ctx)
		if perr := m.st.PutBackup(wctx, b); perr != nil {
			m.log.Error("record failed backup", "app", rel.App, "backup", b.ID, "err", perr)
		}
		m.raise(wctx, rel.App, fmt.Sprintf("%s backup of %s %s FAILED: %v", b.Trigger, kind, target, err))
		return b, fmt.Errorf("%w: %s %s: %v", ErrBackup, kind, target, err)
	}
	// Recorded as running before anything is written: a server killed
	// meanwhile marks it failed at its next start.
	if err := m.st.PutBackup(ctx, b); err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "backing up %s %s to %s\n", kind, target, b.Path)
	// The directory first: a backup that cannot be written pauses nothing.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(fmt.Errorf("backup directory: %w", err))
	}
	var err error
	switch kind {
	case BackupVolume:
		err = m.backupVolume(ctx, rel, target, b, out)
	case BackupPostgres:
		err = m.backupPostgres(ctx, rel, target, b, out)
	}
	if err != nil {
		_ = removeArchive(b) // a failed backup leaves no archive to mistake for one
		return fail(err)
	}
	b.FinishedAt = time.Now().UTC()
	b.Status = store.BackupOK
	if err := m.st.PutBackup(context.WithoutCancel(ctx), b); err != nil {
		// An archive the store does not know is no backup: remove it
		// rather than leave it behind unlisted.
		removeArchive(b)
		return fail(err)
	}
	m.st.AddEvent(ctx, store.AppEvent{App: rel.App, Kind: store.EventBackup, Message: fmt.Sprintf("%s backup %s: %s, %s", b.Trigger, b.ID, fsutil.HumanBytes(b.Size), b.SHA256[:12])})
	fmt.Fprintf(out, "%s: %s, sha256 %s\n", b.ID, fsutil.HumanBytes(b.Size), b.SHA256)
	return b, nil
}

// Manifest is the JSON file written next to every archive: what it holds
// and its checksum, enough to restore it without the store (`moorage
// backup restore --file`).
type Manifest struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Kind      string    `json:"kind"`
	Target    string    `json:"target"`
	Release   string    `json:"release"`
	CreatedAt time.Time `json:"created_at"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	File      string    `json:"file"`
}

// writeArchive writes b.Path and its manifest atomically and durably: the
// archive goes to a .partial file (fsync), the manifest is written (temp,
// fsync, rename), then the archive is renamed into place and the directory
// fsynced. Whatever fails, nothing is left but what was there before: never
// an archive without its manifest.
func writeArchive(b *store.Backup, fill func(w io.Writer) error) error {
	dir := filepath.Dir(b.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	tmp := b.Path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup directory %s: %w", dir, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := fill(cw); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	b.Size, b.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	man, _ := json.MarshalIndent(Manifest{ID: b.ID, App: b.App, Kind: b.Kind, Target: b.Target, Release: b.Release,
		CreatedAt: b.CreatedAt, Size: b.Size, SHA256: b.SHA256, File: filepath.Base(b.Path)}, "", "  ")
	if err := fsutil.WriteFileAtomic(manifestPath(b), append(man, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	if err := os.Rename(tmp, b.Path); err != nil {
		os.Remove(manifestPath(b))
		return err
	}
	return fsutil.SyncDir(dir)
}

// removeArchive removes an archive, then its manifest and what is left of
// writing it (the manifest stays while the archive does).
func removeArchive(b *store.Backup) error {
	for _, p := range []string{b.Path, manifestPath(b), b.Path + ".partial"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

func manifestPath(b *store.Backup) string {
	return strings.TrimSuffix(strings.TrimSuffix(b.Path, ".tar.gz"), ".pgdump") + ".json"
}

// checkArchive re-reads an archive and compares its checksum.
func checkArchive(b *store.Backup) error {
	f, err := os.Open(b.Path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", b.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != b.SHA256 || n != b.Size {
		return fmt.Errorf("archive %s is corrupt: sha256 %s (%d bytes), recorded %s (%d bytes)", b.Path, sum, n, b.SHA256, b.Size)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Backups lists app's backups, newest first.
func (m *Manager) Backups(ctx context.Context, app string) ([]*store.Backup, error) {
	if _, err := m.st.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return m.st.ListBackups(ctx, app)
}

// pausedJournal is what the journal keeps while instances are paused for
// a copy: the next start resumes them if the server dies meanwhile.
type pausedJournal struct {
	IDs []string `json:"ids"`
}

// pauseAll pauses instances and returns a function that resumes them. The
// instances are recorded in the store's journal before the first is
// paused, and forgotten once all are resumed: a server killed in between
// resumes them at its next start (see recoverPaused).
func (m *Manager) pauseAll(ctx context.Context, app string, rt runtime.Runtime, ins []runtime.Instance, out io.Writer) (func(), error) {
	if len(ins) == 0 {
		return func() {}, nil
	}
	j := pausedJournal{}
	for _, in := range ins {
		j.IDs = append(j.IDs, in.ID)
	}
	if err := m.journalPaused(ctx, app, j); err != nil {
		return nil, fmt.Errorf("nothing paused: %w", err)
	}
	var paused []string
	resume := func() {
		rctx := context.WithoutCancel(ctx)
		var mu sync.Mutex
		var failed []string
		var wg sync.WaitGroup
		for _, id := range paused {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := rt.Resume(rctx, id); err != nil {
					m.raise(rctx, app, fmt.Sprintf("%s could not be resumed after a backup (the next server start retries): %v", id, err))
					mu.Lock()
					failed = append(failed, id)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			sort.Strings(failed)
			m.journalPaused(rctx, app, pausedJournal{IDs: failed})
			return
		}
		if err := m.st.DeleteJournal(rctx, app, store.JournalPaused); err != nil {
			m.log.Error("forget paused instances (the next start resumes them again, harmlessly)", "app", app, "err", err)
		}
	}
	for _, in := range ins {
		if err := rt.Pause(ctx, in.ID); err != nil {
			resume()
			return nil, fmt.Errorf("pause %s: %w", in.ID, err)
		}
		paused = append(paused, in.ID)
	}
	fmt.Fprintf(out, "paused %s for a consistent copy\n", strings.Join(paused, " "))
	return resume, nil
}

func (m *Manager) journalPaused(ctx context.Context, app string, j pausedJournal) error {
	b, _ := json.Marshal(j)
	return m.st.PutJournal(ctx, app, store.JournalPaused, string(b))
}
