package logs

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

func TestWriteRotateReadAndLastTime(t *testing.T) {
	dir := t.TempDir()
	base := Path(dir, "app", "app-web-v1-1")
	if LastTime(base) != (time.Time{}) {
		t.Fatal("LastTime of a missing log is not zero")
	}
	f, err := Open(base, 200, 2)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var want []string
	for i := range 12 {
		text := "line " + string(rune('a'+i))
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		f.WriteLine(t0.Add(time.Duration(i)*time.Second), stream, []byte(text))
		want = append(want, text)
	}
	f.Close()
	files := Files(base)
	if len(files) != 3 || files[0] != RotatedName(base, 2) || files[2] != base {
		t.Fatalf("files %v, want 2 rotations and the current file", files)
	}
	if got := LastTime(base); !got.Equal(t0.Add(11 * time.Second)) {
		t.Errorf("LastTime = %s, want the last line's", got)
	}
	if Find(dir, "app-web-v1-1") != base || Find(dir, "app-web-v1") != "" {
		t.Errorf("Find: %q %q", Find(dir, "app-web-v1-1"), Find(dir, "app-web-v1"))
	}
	var got []runtime.LogLine
	err = Reader{ID: "app-web-v1-1", Base: base}.Read(context.Background(), runtime.LogOptions{Tail: 3}, func(l runtime.LogLine) error {
		got = append(got, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, l := range got {
		texts = append(texts, l.Text)
	}
	if !slices.Equal(texts, want[9:]) || got[0].Stream != "stderr" || !got[2].Time.Equal(t0.Add(11*time.Second)) {
		t.Errorf("tail 3 = %+v, want %q", got, want[9:])
	}
	freed, err := Prune(context.Background(), filepath.Dir(base), runtime.LogRetention{MaxBytes: 1})
	if err != nil || freed == 0 || len(Files(base)) != 0 {
		t.Errorf("prune freed %d (%v), left %v", freed, err, Files(base))
	}
}

func TestParseLine(t *testing.T) {
	l := ParseLine("x", []byte("2026-01-02T03:04:05.000000006Z stderr hello world"))
	if l.Stream != "stderr" || l.Text != "hello world" || l.Time.Nanosecond() != 6 {
		t.Errorf("parsed %+v", l)
	}
	if l := ParseLine("x", []byte("no time here")); l.Stream != "stdout" || l.Text != "no time here" {
		t.Errorf("parsed %+v", l)
	}
}
