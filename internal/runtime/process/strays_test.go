//go:build linux

package process

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestRemoveStrayReleases(t *testing.T) {
	dir := t.TempDir()
	rt, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, d := range []string{"v1", "v2", "v3", "v4", "notes"} {
		if err := os.MkdirAll(filepath.Join(rt.releaseDir("app", d), "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// v4 is being built by this process.
	liveBuilds.Store(rt.releaseDir("app", "v4"), struct{}{})
	defer liveBuilds.Delete(rt.releaseDir("app", "v4"))

	removed, err := rt.RemoveStrayReleases(context.Background(), "app", func(rel string) bool { return rel == "v1" || rel == "v3" })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != rt.releaseDir("app", "v2") {
		t.Fatalf("removed %v, want only v2", removed)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "releases", "app"))
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	sort.Strings(left)
	if want := []string{"notes", "v1", "v3", "v4"}; len(left) != len(want) || left[0] != want[0] || left[1] != want[1] || left[2] != want[2] || left[3] != want[3] {
		t.Fatalf("left %v, want %v", left, want)
	}
	// An app without releases is fine; a bad name is refused.
	if _, err := rt.RemoveStrayReleases(context.Background(), "other", func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemoveStrayReleases(context.Background(), "../x", func(string) bool { return false }); err == nil {
		t.Fatal("a bad app name was accepted")
	}
}
