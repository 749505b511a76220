package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

type journalRow struct{ name, detail, outcome string }

// oldJournal reads testdata/journal_c2be4a7.txt: the plan's first line and
// the steps as the binary before internal/plan journaled them.
func oldJournal(t *testing.T) (first string, rows []journalRow) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "journal_c2be4a7.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if f[0] == "plan" {
			first = f[1]
			continue
		}
		r := journalRow{name: f[0], detail: f[1]}
		if len(f) > 2 {
			r.outcome = f[2]
		}
		rows = append(rows, r)
	}
	return first, rows
}

// A journal the previous binary wrote (a server killed, or handed over
// by a SIGHUP upgrade, in the middle of a deploy) is read by this one: its
// steps read back as they were written, and recovery closes the deploy
// from them as that binary would have: after the cutover it is finished,
// before it undone, and the phase it names is the journaled step's.
func TestRecoveryReadsAJournalOfTheBinaryBefore(t *testing.T) {
	for _, c := range []struct {
		name     string
		upTo     string // the last journaled step (running when killed)
		cutover  bool
		status   string
		reason   string
		activeIs int
	}{
		{"after the cutover", "monitor", true, store.DeploySucceeded, "interrupted by a server restart during monitor, after the cutover: finished at restart", 2},
		{"before the cutover", "start", false, store.DeployFailed, "interrupted by a server restart during start, before the cutover: undone, v1 kept serving", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			st, err := store.Open(ctx, filepath.Join(dir, "moorage.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// v1 active; a deploy of v2 journaled by the old binary.
			sp := &spec.Spec{App: "hello", Runtime: "process"}
			if _, err := st.EnsureApp(ctx, "hello", "process"); err != nil {
				t.Fatal(err)
			}
			first := &store.Deploy{App: "hello", Kind: store.KindDeploy, Owner: "test"}
			if err := st.CreateDeploy(ctx, first); err != nil {
				t.Fatal(err)
			}
			v1 := &store.Release{App: "hello", Cause: "deploy", Runtime: "process", Spec: sp, DeployID: first.ID}
			if err := st.CreateRelease(ctx, v1); err != nil {
				t.Fatal(err)
			}
			if err := st.CommitCutover(ctx, first.ID, "hello", v1.Version); err != nil {
				t.Fatal(err)
			}
			if err := st.FinishDeploy(ctx, first.ID, store.DeploySucceeded, ""); err != nil {
				t.Fatal(err)
			}
			d := &store.Deploy{App: "hello", Kind: store.KindDeploy, Owner: "test", FromRelease: v1.Version}
			if err := st.CreateDeploy(ctx, d); err != nil {
				t.Fatal(err)
			}
			v2 := &store.Release{App: "hello", Cause: "deploy", Runtime: "process", Spec: sp, DeployID: d.ID}
			if err := st.CreateRelease(ctx, v2); err != nil {
				t.Fatal(err)
			}
			if err := st.SetDeployRelease(ctx, d.ID, v2.Version); err != nil {
				t.Fatal(err)
			}
			head, rows := oldJournal(t)
			if err := st.SetDeployPlan(ctx, d.ID, head+"\n"); err != nil {
				t.Fatal(err)
			}
			var written []journalRow
			for _, r := range rows {
				seq, err := st.StartStep(ctx, d.ID, r.name, r.detail)
				if err != nil {
					t.Fatal(err)
				}
				written = append(written, r)
				if r.name == "cutover" {
					if err := st.CommitCutover(ctx, d.ID, "hello", v2.Version); err != nil {
						t.Fatal(err)
					}
				}
				if r.name == c.upTo {
					break
				}
				if err := st.FinishStep(ctx, d.ID, seq, r.outcome, ""); err != nil {
					t.Fatal(err)
				}
			}

			// The new binary starts on that store.
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			rt, err := process.New(process.Options{DataDir: dir, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			px := proxy.New(proxy.Options{Logger: log})
			defer px.Close()
			e := New(Options{Store: st, Runtimes: map[string]runtime.Runtime{"process": rt}, Proxy: px, ServerID: "new", Logger: log, DataDir: dir})
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() {
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				e.StopAll(sctx)
				e.Close()
			}()

			got, err := st.GetDeploy(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != c.status || got.Reason != c.reason {
				t.Errorf("deploy closed as %s (%q), want %s (%q)", got.Status, got.Reason, c.status, c.reason)
			}
			if len(got.Steps) != len(written) {
				t.Fatalf("%d steps read back, %d written", len(got.Steps), len(written))
			}
			for i, s := range got.Steps {
				if s.Name != written[i].name || s.Detail != written[i].detail {
					t.Errorf("step %d read back as %s %q, written %s %q", i+1, s.Name, s.Detail, written[i].name, written[i].detail)
				}
			}
			a, err := st.GetApp(ctx, "hello")
			if err != nil {
				t.Fatal(err)
			}
			if a.Current != c.activeIs {
				t.Errorf("active release v%d, want v%d", a.Current, c.activeIs)
			}
		})
	}
}
