package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// recoverBackups runs at start, before the apps are reconciled: volume
// restores a crash interrupted are undone (the volume is put back as it
// was: the restore's record says it was undone), instances a backup had
// paused are resumed, and so is any instance found paused, and backups a
// crash interrupted are marked failed. Each is raised as an event.
func (e *Engine) recoverBackups(ctx context.Context) {
	e.recoverRestores(ctx)
	e.recoverPaused(ctx)
	e.recoverInterruptedBackups(ctx)
}

// recoverRestores undoes the volume restores a crash interrupted.
func (e *Engine) recoverRestores(ctx context.Context) {
	entries, err := e.st.ListJournal(ctx, store.JournalRestore)
	if err != nil {
		e.log.Error("read the restore journal", "err", err)
		return
	}
	for _, en := range entries {
		var j restoreJournal
		if err := json.Unmarshal([]byte(en.Value), &j); err != nil {
			e.raise(ctx, en.App, fmt.Sprintf("a restore interrupted by a server restart left an unreadable journal (%v); check the app's volumes", err))
			continue
		}
		save := func(phase string) error {
			j.Phase = phase
			v, _ := json.Marshal(&j)
			return e.st.PutJournal(ctx, en.App, store.JournalRestore, string(v))
		}
		finished := j.Phase == phaseDone
		if err := undoSwap(&j, save); err != nil {
			e.raise(ctx, en.App, fmt.Sprintf("restore of %s into volume %s was interrupted by a server restart, and putting the volume back FAILED: %v; its previous content is in %s, the backup's in %s", j.Backup, j.Volume, err, j.Old, j.Stage))
			continue
		}
		if err := e.st.DeleteJournal(ctx, en.App, store.JournalRestore); err != nil {
			e.log.Error("forget an undone restore", "app", en.App, "err", err)
		}
		if finished {
			e.log.Info("cleaned up after a finished restore", "app", en.App, "backup", j.Backup)
			continue
		}
		e.raise(ctx, en.App, fmt.Sprintf("restore of %s into volume %s was interrupted by a server restart: the volume was put back as it was; run `moorage backup restore %s` again", j.Backup, j.Volume, j.Backup))
	}
}

// recoverPaused resumes the instances a backup paused (recorded in the
// journal before it paused them), and any running instance found paused.
func (e *Engine) recoverPaused(ctx context.Context) {
	entries, err := e.st.ListJournal(ctx, store.JournalPaused)
	if err != nil {
		e.log.Error("read the journal of paused instances", "err", err)
	}
	journaled := map[string][]string{} // app → instances
	for _, en := range entries {
		var j pausedJournal
		if err := json.Unmarshal([]byte(en.Value), &j); err == nil {
			journaled[en.App] = j.IDs
		}
	}
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		e.log.Error("list apps to resume paused instances", "err", err)
		return
	}
	for _, a := range apps {
		want := map[string]bool{}
		for _, id := range journaled[a.Name] {
			want[id] = true
		}
		var resumed, failed []string
		for name, rt := range e.runtimes {
			ins, err := rt.List(ctx, runtime.Filter{App: a.Name})
			if err != nil {
				e.raise(ctx, a.Name, fmt.Sprintf("cannot list instances on %s to resume paused ones: %v", name, err))
				failed = append(failed, name)
				continue
			}
			for _, in := range ins {
				if in.State != runtime.StateRunning || !(in.Paused || want[in.ID]) {
					continue
				}
				if err := rt.Resume(ctx, in.ID); err != nil {
					e.raise(ctx, a.Name, fmt.Sprintf("%s is paused and could not be resumed: %v", in.ID, err))
					failed = append(failed, in.ID)
					continue
				}
				if in.Paused {
					resumed = append(resumed, in.ID)
				}
			}
		}
		if len(resumed) > 0 {
			sort.Strings(resumed)
			why := "found paused at server start"
			if len(journaled[a.Name]) > 0 {
				why = "paused by a backup the server's restart interrupted"
			}
			e.raise(ctx, a.Name, fmt.Sprintf("resumed %s (%s)", strings.Join(resumed, " "), why))
		}
		if _, ok := journaled[a.Name]; ok && len(failed) == 0 {
			if err := e.st.DeleteJournal(ctx, a.Name, store.JournalPaused); err != nil {
				e.log.Error("forget paused instances", "app", a.Name, "err", err)
			}
		}
	}
}

// recoverInterruptedBackups marks failed the backups a crash interrupted
// (recorded as running) and removes their partial archives.
func (e *Engine) recoverInterruptedBackups(ctx context.Context) {
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		e.log.Error("list apps to close interrupted backups", "err", err)
		return
	}
	for _, a := range apps {
		bs, err := e.st.ListBackups(ctx, a.Name)
		if err != nil {
			e.log.Error("list backups", "app", a.Name, "err", err)
			continue
		}
		for _, b := range bs {
			if b.Status != store.BackupRunning {
				continue
			}
			removeArchive(b)
			b.Status, b.Error, b.FinishedAt = store.BackupFailed, "interrupted by a server restart", time.Now().UTC()
			if err := e.st.PutBackup(ctx, b); err != nil {
				e.log.Error("close an interrupted backup", "app", a.Name, "backup", b.ID, "err", err)
			}
			e.raise(ctx, a.Name, fmt.Sprintf("%s backup of %s %s FAILED: interrupted by a server restart", b.Trigger, b.Kind, b.Target))
		}
	}
}
