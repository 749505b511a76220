package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dockerTar is a tar stream as the Docker API archives a path.
func dockerTar(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		h := h
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

func TestRepack(t *testing.T) {
	in := dockerTar(t,
		tar.Header{Name: "moorage-volume/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "moorage-volume/PG_VERSION", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 70, Gid: 70, Uname: "postgres"},
		tar.Header{Name: "moorage-volume/base/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 70, Gid: 70},
		tar.Header{Name: "moorage-volume/base/1", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 70, Gid: 70},
		tar.Header{Name: "moorage-volume/current", Typeflag: tar.TypeSymlink, Linkname: "base/1"},
		tar.Header{Name: "moorage-volume/.s.PGSQL.5432", Typeflag: tar.TypeFifo, Mode: 0o600},
	)
	var skipped []string
	var out bytes.Buffer
	st, err := Repack(bytes.NewReader(in), &out, PackOptions{KeepOwner: true, SkipSpecial: true, Skipped: func(rel string) { skipped = append(skipped, rel) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || strings.Join(skipped, ",") != ".s.PGSQL.5432" {
		t.Fatalf("stats %+v, skipped %v", st, skipped)
	}
	// What Unpack (verify, restore) reads back: the directory's entries,
	// owners kept.
	dir := t.TempDir()
	if _, err := UnpackWith(&out, dir, Limits{}, os.Geteuid() == 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "base", "1"))
	if err != nil || string(b) != "content of moorage-volume/base/1" {
		t.Fatalf("base/1: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "current")); err != nil || l != "base/1" {
		t.Fatalf("current: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("PG_VERSION: %v %v", fi, err)
	}

	// Refused: an entry outside the top directory, one that climbs out,
	// a hard link, a special file without SkipSpecial.
	for name, entries := range map[string][]tar.Header{
		"outside": {{Name: "v/", Typeflag: tar.TypeDir}, {Name: "w/x", Typeflag: tar.TypeReg}},
		"climbs":  {{Name: "v/", Typeflag: tar.TypeDir}, {Name: "v/../x", Typeflag: tar.TypeReg}},
		"link":    {{Name: "v/a", Typeflag: tar.TypeReg}, {Name: "v/b", Typeflag: tar.TypeLink, Linkname: "v/a"}},
		"fifo":    {{Name: "v/p", Typeflag: tar.TypeFifo}},
	} {
		_, err := Repack(bytes.NewReader(dockerTar(t, entries...)), &bytes.Buffer{}, PackOptions{})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if (name == "outside" || name == "climbs") && !errors.Is(err, ErrUnsafe) {
			t.Errorf("%s: %v, want ErrUnsafe", name, err)
		}
	}
}
