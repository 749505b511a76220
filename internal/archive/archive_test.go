package archive

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPackUnpackHonoursIgnore(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "main.go"), "package main")
	write(t, filepath.Join(src, ".git", "HEAD"), "ref")
	write(t, filepath.Join(src, ".moorage", "moorage.db"), "db")
	write(t, filepath.Join(src, "data", "x"), "x")
	write(t, filepath.Join(src, "logs", "a.log"), "log")
	write(t, filepath.Join(src, "logs", "keep.log"), "keep")
	write(t, filepath.Join(src, "sub", "deep", "cache.tmp"), "tmp")
	write(t, filepath.Join(src, ".moorageignore"), "data/\nlogs/*.log\n!logs/keep.log\n**/*.tmp\n")
	os.Symlink("main.go", filepath.Join(src, "link"))
	ig, err := LoadIgnore(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Pack(src, ig, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := Unpack(&buf, dst, Limits{MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"main.go": true, ".git/HEAD": false, ".moorage/moorage.db": false, "data/x": false,
		"logs/a.log": false, "logs/keep.log": true, "sub/deep/cache.tmp": false, "link": true, ".moorageignore": true,
	} {
		_, err := os.Lstat(filepath.Join(dst, p))
		if (err == nil) != want {
			t.Errorf("%s: present=%v, want %v", p, err == nil, want)
		}
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	// A symlink pointing out, then a file written through it.
	src := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(src, "evil"))
	var buf bytes.Buffer
	if _, err := Pack(src, nil, &buf); err != nil {
		t.Fatal(err)
	}
	// Append a second archive member by packing a dir that has evil/x.
	src2 := t.TempDir()
	write(t, filepath.Join(src2, "evil", "x"), "pwned")
	var buf2 bytes.Buffer
	Pack(src2, nil, &buf2)
	dst := t.TempDir()
	if _, err := Unpack(&buf, dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(&buf2, dst, Limits{}); err == nil {
		t.Fatal("wrote through a symlink that escapes")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Fatal("file escaped the directory")
	}
}

func TestUnpackLimits(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "big"), strings.Repeat("x", 10000))
	var buf bytes.Buffer
	Pack(src, nil, &buf)
	if _, err := Unpack(&buf, t.TempDir(), Limits{MaxBytes: 100}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit: %v", err)
	}
}
