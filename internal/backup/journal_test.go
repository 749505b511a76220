package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/store"
)

// A volume restore journaled by the binary before internal/backup
// (testdata/restore_journal_c2be4a7.json, its JSON as that binary wrote it
// into the store) and interrupted mid-swap by a SIGKILL or a SIGHUP
// handover is undone by this one at start: the volume holds what it held
// before, the scratch directories are gone, the journal is forgotten and
// the event names the backup.
func TestRecoveryUndoesARestoreJournaledByTheBinaryBefore(t *testing.T) {
	m := testManager(t)
	ctx := context.Background()
	root := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("testdata", "restore_journal_c2be4a7.json"))
	if err != nil {
		t.Fatal(err)
	}
	value := strings.ReplaceAll(strings.TrimSpace(string(raw)), "ROOT", root)
	dir, stage, old := filepath.Join(root, "data"), filepath.Join(root, ".data-moorage-restore"), filepath.Join(root, ".data-moorage-old")
	for _, d := range []string{dir, stage, old} {
		os.MkdirAll(d, 0o755)
	}
	// swap-in, half done: the volume's entries are in Old, part of the
	// backup's already in the volume.
	write(t, old, map[string]string{"schema.json": "old schema", "media/a.jpg": "old a"})
	write(t, dir, map[string]string{"schema.json": "backup schema"})
	write(t, stage, map[string]string{"media/b.jpg": "backup b"})
	if _, err := m.st.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	if err := m.st.PutJournal(ctx, "hello", store.JournalRestore, value); err != nil {
		t.Fatal(err)
	}

	m.recoverBackups(ctx) // what the engine's start calls (Hooks.Recover)

	if got, want := tree(t, dir), "media/ media/a.jpg=old a schema.json=old schema"; got != want {
		t.Fatalf("volume after recovery: %s, want %s", got, want)
	}
	for _, d := range []string{stage, old} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind", d)
		}
	}
	if _, err := m.st.GetJournal(ctx, "hello", store.JournalRestore); err == nil {
		t.Error("the restore journal was not forgotten")
	}
	evs, err := m.st.ListEvents(ctx, "hello", 10, store.EventBackup)
	if err != nil || len(evs) == 0 || !strings.Contains(evs[0].Message, "restore of hello-volume-data-20261206T010203000Z into volume data was interrupted") {
		t.Fatalf("events %+v (%v)", evs, err)
	}
}
