package backup

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/store"
)

// tree reads a directory into "path=content" lines ("path/" for
// directories), sorted.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+"="+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func move(t *testing.T, from, to string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.Rename(filepath.Join(from, n), filepath.Join(to, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// A volume restore interrupted in any phase, at any entry, is undone: the
// volume holds exactly what it held before, and the scratch directories are
// gone. The undo journals its own phases, and can itself be interrupted
// and taken up again.
func TestUndoSwapFromEveryPhase(t *testing.T) {
	old := map[string]string{"schema.json": "old schema", "media/a.jpg": "old a", "notes": "old notes"}
	restored := map[string]string{"schema.json": "backup schema", "media/b.jpg": "backup b"}
	cases := []struct {
		name  string
		phase string
		crash func(t *testing.T, j *restoreJournal) // the state a crash left
	}{
		{"unpacked", phaseUnpack, func(t *testing.T, j *restoreJournal) {}},
		{"unpack-not-started", phaseUnpack, func(t *testing.T, j *restoreJournal) { os.RemoveAll(j.Stage); os.RemoveAll(j.Old) }},
		{"swap-out-none", phaseSwapOut, func(t *testing.T, j *restoreJournal) {}},
		{"swap-out-part", phaseSwapOut, func(t *testing.T, j *restoreJournal) { move(t, j.Dir, j.Old, "media") }},
		{"swap-out-all", phaseSwapOut, func(t *testing.T, j *restoreJournal) { move(t, j.Dir, j.Old, "media", "notes", "schema.json") }},
		{"swap-in-none", phaseSwapIn, func(t *testing.T, j *restoreJournal) { move(t, j.Dir, j.Old, "media", "notes", "schema.json") }},
		{"swap-in-part", phaseSwapIn, func(t *testing.T, j *restoreJournal) {
			move(t, j.Dir, j.Old, "media", "notes", "schema.json")
			move(t, j.Stage, j.Dir, "schema.json")
		}},
		{"swap-in-all", phaseSwapIn, func(t *testing.T, j *restoreJournal) {
			move(t, j.Dir, j.Old, "media", "notes", "schema.json")
			move(t, j.Stage, j.Dir, "schema.json", "media")
		}},
		{"undo-out-part", phaseUndoOut, func(t *testing.T, j *restoreJournal) {
			move(t, j.Dir, j.Old, "media", "notes", "schema.json")
			move(t, j.Stage, j.Dir, "schema.json", "media")
			move(t, j.Dir, j.Stage, "media")
		}},
		{"undo-in-part", phaseUndoIn, func(t *testing.T, j *restoreJournal) {
			move(t, j.Dir, j.Old, "media", "notes", "schema.json")
			move(t, j.Old, j.Dir, "notes")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			j := &restoreJournal{Backup: "b1", Volume: "data", Dir: filepath.Join(root, "data"),
				Stage: filepath.Join(root, ".data-moorage-restore"), Old: filepath.Join(root, ".data-moorage-old"), Phase: c.phase}
			for _, d := range []string{j.Dir, j.Stage, j.Old} {
				os.MkdirAll(d, 0o755)
			}
			write(t, j.Dir, old)
			write(t, j.Stage, restored)
			want := tree(t, j.Dir)
			c.crash(t, j)
			var phases []string
			save := func(p string) error {
				phases = append(phases, p)
				return nil
			}
			if err := undoSwap(j, save); err != nil {
				t.Fatalf("undo: %v", err)
			}
			if got := tree(t, j.Dir); got != want {
				t.Fatalf("volume after undo from %s:\n got %s\nwant %s", c.name, got, want)
			}
			for _, d := range []string{j.Stage, j.Old} {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					t.Fatalf("%s left behind", d)
				}
			}
			if c.phase == phaseSwapIn || c.phase == phaseUndoOut {
				if strings.Join(phases, ",") != "undo-out,undo-in" {
					t.Fatalf("phases journaled: %v", phases)
				}
			}
		})
	}
	// A journal that cannot be written stops the undo before it moves
	// anything.
	root := t.TempDir()
	j := &restoreJournal{Dir: filepath.Join(root, "data"), Stage: filepath.Join(root, "s"), Old: filepath.Join(root, "o"), Phase: phaseSwapIn}
	for _, d := range []string{j.Dir, j.Stage, j.Old} {
		os.MkdirAll(d, 0o755)
	}
	write(t, j.Old, old)
	write(t, j.Dir, restored)
	if err := undoSwap(j, func(string) error { return errors.New("disk full") }); err == nil {
		t.Fatal("undo went on without its journal")
	}
	if tree(t, j.Old) == "" || tree(t, j.Dir) == "" {
		t.Fatal("undo moved entries without its journal")
	}
}

// An archive whose manifest cannot be written is not left behind: no
// archive without its manifest, no partial file.
func TestWriteArchiveLeavesNothingWhenTheManifestFails(t *testing.T) {
	dir := t.TempDir()
	b := &store.Backup{ID: "hello-volume-data-x", App: "hello", Kind: BackupVolume, Target: "data",
		Path: filepath.Join(dir, "hello-volume-data-x.tar.gz"), CreatedAt: time.Now()}
	// A directory where the manifest goes: it cannot be replaced by a file.
	os.MkdirAll(filepath.Join(manifestPath(b), "x"), 0o700)
	err := writeArchive(b, func(w io.Writer) error {
		_, err := io.WriteString(w, "archive bytes")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Fatalf("writeArchive = %v, want a manifest error", err)
	}
	for _, p := range []string{b.Path, b.Path + ".partial"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left behind", p)
		}
	}
	// And with a writable directory, both are there and agree.
	os.RemoveAll(manifestPath(b))
	if err := writeArchive(b, func(w io.Writer) error {
		_, err := io.WriteString(w, "archive bytes")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := checkArchive(b); err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(manifestPath(b)); !strings.Contains(string(m), b.SHA256) {
		t.Fatalf("manifest %s lacks the checksum %s", m, b.SHA256)
	}
}
