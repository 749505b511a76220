package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// recoverBackups runs at start, before the apps are reconciled: volume
// restores a crash interrupted are undone (the volume is put back as it
// was: the restore's record says it was undone), instances a backup had
// paused are resumed, and so is any instance found paused, and backups a
// crash interrupted are marked failed. Each is raised as an event.
func (m *Manager) recoverBackups(ctx context.Context) {
	m.recoverRestores(ctx)
	m.recoverPaused(ctx)
	m.recoverInterruptedBackups(ctx)
}

// recoverRestores undoes the volume restores a crash interrupted.
func (m *Manager) recoverRestores(ctx context.Context) {
	entries, err := m.st.ListJournal(ctx, store.JournalRestore)
	if err != nil {
		m.log.Error("read the restore journal", "err", err)
		return
	}
	for _, en := range entries {
		j, finished, err := m.undoRestore(ctx, en.App, en.Value)
		if err != nil {
			m.raise(ctx, en.App, fmt.Sprintf("a restore interrupted by a server restart: %v", err))
			continue
		}
		if finished {
			m.log.Info("cleaned up after a finished restore", "app", en.App, "backup", j.Backup)
			continue
		}
		m.raise(ctx, en.App, fmt.Sprintf("restore of %s into volume %s was interrupted by a server restart: the volume was put back as it was; run `moorage backup restore %s` again", j.Backup, j.Volume, j.Backup))
	}
}

// undoRestore puts back the volume of the restore journaled as value for
// app (an interrupted restore, or a failed one whose undo failed too) and
// forgets the journal. finished says the restore had completed: only its
// scratch directories were left. The error says where each content is.
func (m *Manager) undoRestore(ctx context.Context, app, value string) (j restoreJournal, finished bool, err error) {
	if err := json.Unmarshal([]byte(value), &j); err != nil {
		return j, false, fmt.Errorf("its journal is unreadable (%v); check the app's volumes", err)
	}
	save := func(phase string) error { return j.advance(ctx, m.st, app, phase) }
	finished = j.Phase == phaseDone
	if j.Runtime != "" {
		if err := m.undoRemote(ctx, app, &j, save); err != nil {
			return j, false, fmt.Errorf("restore of %s into volume %s: putting the volume back FAILED: %v; its previous content is in %s", j.Backup, j.Volume, err, j.Old)
		}
	} else if err := undoSwap(&j, save); err != nil {
		return j, false, fmt.Errorf("restore of %s into volume %s: putting the volume back FAILED: %v; its previous content is in %s, the backup's in %s", j.Backup, j.Volume, err, j.Old, j.Stage)
	}
	if err := m.st.DeleteJournal(context.WithoutCancel(ctx), app, store.JournalRestore); err != nil {
		m.log.Error("forget an undone restore", "app", app, "err", err)
	}
	return j, finished, nil
}

// recoverPaused resumes the instances a backup paused (recorded in the
// journal before it paused them), and any running instance found paused.
func (m *Manager) recoverPaused(ctx context.Context) {
	apps, err := m.st.ListApps(ctx)
	if err != nil {
		m.log.Error("list apps to resume paused instances", "err", err)
		return
	}
	for _, a := range apps {
		m.resumePaused(ctx, a.Name)
	}
}

// resumePaused resumes app's instances its backup journal says were paused,
// and any found paused, then forgets the journal, unless an instance could
// not be resumed or a runtime not be seen yet (a docker engine that has not
// answered: RecoverRuntime calls this again once it has).
func (m *Manager) resumePaused(ctx context.Context, app string) {
	want := map[string]bool{}
	v, err := m.st.GetJournal(ctx, app, store.JournalPaused)
	journaled := err == nil
	if journaled {
		var j pausedJournal
		if err := json.Unmarshal([]byte(v), &j); err == nil {
			for _, id := range j.IDs {
				want[id] = true
			}
		}
	}
	var resumed, failed []string
	for name, rt := range m.e.Runtimes() {
		if !engine.Connected(rt) {
			failed = append(failed, name)
			continue
		}
		ins, err := rt.List(ctx, runtime.Filter{App: app})
		if err != nil {
			m.raise(ctx, app, fmt.Sprintf("cannot list instances on %s to resume paused ones: %v", name, err))
			failed = append(failed, name)
			continue
		}
		for _, in := range ins {
			if in.State != runtime.StateRunning || !(in.Paused || want[in.ID]) {
				continue
			}
			if err := rt.Resume(ctx, in.ID); err != nil {
				m.raise(ctx, app, fmt.Sprintf("%s is paused and could not be resumed: %v", in.ID, err))
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
		if len(want) > 0 {
			why = "paused by a backup the server's restart interrupted"
		}
		m.raise(ctx, app, fmt.Sprintf("resumed %s (%s)", strings.Join(resumed, " "), why))
	}
	if journaled && len(failed) == 0 {
		if err := m.st.DeleteJournal(ctx, app, store.JournalPaused); err != nil {
			m.log.Error("forget paused instances", "app", app, "err", err)
		}
	}
}

// recoverInterruptedBackups marks failed the backups a crash interrupted
// (recorded as running) and removes their partial archives.
func (m *Manager) recoverInterruptedBackups(ctx context.Context) {
	apps, err := m.st.ListApps(ctx)
	if err != nil {
		m.log.Error("list apps to close interrupted backups", "err", err)
		return
	}
	for _, a := range apps {
		bs, err := m.st.ListBackups(ctx, a.Name)
		if err != nil {
			m.log.Error("list backups", "app", a.Name, "err", err)
			continue
		}
		for _, b := range bs {
			if b.Status != store.BackupRunning {
				continue
			}
			removeArchive(b)
			b.Status, b.Error, b.FinishedAt = store.BackupFailed, "interrupted by a server restart", time.Now().UTC()
			if err := m.st.PutBackup(ctx, b); err != nil {
				m.log.Error("close an interrupted backup", "app", a.Name, "backup", b.ID, "err", err)
			}
			m.raise(ctx, a.Name, fmt.Sprintf("%s backup of %s %s FAILED: interrupted by a server restart", b.Trigger, b.Kind, b.Target))
		}
	}
}
