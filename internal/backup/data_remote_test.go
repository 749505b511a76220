package backup

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// remoteRuntime is a runtime whose volumes are not on the server: it
// records what ReplaceVolume is given.
type remoteRuntime struct {
	runtime.Runtime // nil: only what backups call is implemented
	replaced        []string
}

func (r *remoteRuntime) Name() string { return "remote" }

func (r *remoteRuntime) ArchiveVolume(ctx context.Context, app, name string) (io.ReadCloser, string, error) {
	return nil, "", runtime.ErrNotSupported
}

func (r *remoteRuntime) ReplaceVolume(ctx context.Context, app, name string, content io.Reader) (string, error) {
	b, err := io.ReadAll(content)
	r.replaced = append(r.replaced, app+"/"+name+"="+string(b))
	return "node1", err
}

// A restore of a volume that is not on the server, interrupted by a crash,
// is undone at the next start from its journaled phase: once the
// replacement had begun, the runtime puts the archived previous content
// back; before, nothing is touched. The archive of the previous content
// goes, and so does the journal; the event names the backup.
func TestRecoveryUndoesARemoteRestore(t *testing.T) {
	for _, c := range []struct {
		phase    string
		replaced string
	}{
		{phaseSave, ""},
		{phaseReplace, "hello/pgdata=previous content"},
		{phaseUndoReplace, "hello/pgdata=previous content"},
	} {
		t.Run(c.phase, func(t *testing.T) {
			dir := t.TempDir()
			st, err := store.Open(context.Background(), filepath.Join(dir, "moorage.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			rt := &remoteRuntime{}
			e := engine.New(engine.Options{Store: st, DataDir: dir, Logger: log, Runtimes: map[string]runtime.Runtime{"remote": rt}})
			m := New(Options{Engine: e, Store: st, DataDir: dir, Logger: log})
			ctx := context.Background()
			old := filepath.Join(dir, "restore", "hello", "pgdata-before.tar.gz")
			os.MkdirAll(filepath.Dir(old), 0o700)
			if err := os.WriteFile(old, []byte("previous content"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := st.EnsureApp(ctx, "hello", "remote"); err != nil {
				t.Fatal(err)
			}
			v, _ := json.Marshal(restoreJournal{Backup: "hello-volume-pgdata-20261207T010203000Z", Volume: "pgdata", Old: old, Phase: c.phase, Runtime: "remote"})
			if err := st.PutJournal(ctx, "hello", store.JournalRestore, string(v)); err != nil {
				t.Fatal(err)
			}

			m.recoverRestores(ctx) // the first thing the start's recoverBackups does

			if got := strings.Join(rt.replaced, ","); got != c.replaced {
				t.Fatalf("replaced %q, want %q", got, c.replaced)
			}
			if _, err := os.Stat(old); !os.IsNotExist(err) {
				t.Errorf("the archive of the previous content was left: %v", err)
			}
			if _, err := st.GetJournal(ctx, "hello", store.JournalRestore); err == nil {
				t.Error("the restore journal was not forgotten")
			}
			evs, err := st.ListEvents(ctx, "hello", 10, store.EventBackup)
			if err != nil || len(evs) == 0 || !strings.Contains(evs[0].Message, "restore of hello-volume-pgdata-20261207T010203000Z into volume pgdata was interrupted") {
				t.Fatalf("events %+v (%v)", evs, err)
			}
		})
	}
}
