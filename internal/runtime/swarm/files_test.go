package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

// writeTree writes files (path → content; a path ending in "/" is an
// empty directory) under a new directory, and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A directory becomes its files (with mode, size and hash) and its
// directories, empty ones marked, in lexical order.
func TestWalkFiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		"custom/static/site.css":   "body{}",
		"custom/templates/a.html":  "<p>a</p>",
		"custom/run.sh":            "#!/bin/sh\n",
		"custom/uploads/":          "",
		"custom/deep/er/note.txt":  "deep",
		"custom/deep/er/empty/":    "",
		"custom/deep/er/twin.txt":  "deep",
		"elsewhere/not-mounted.md": "x",
	})
	if err := os.Chmod(filepath.Join(root, "custom/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := walkFiles(filepath.Join(root, "custom"), "./custom")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		s := e.Rel + " "
		switch {
		case e.Dir && e.Empty:
			s += "empty-dir"
		case e.Dir:
			s += "dir"
		default:
			s += "file"
		}
		got = append(got, s+" "+e.Mode.String())
	}
	want := []string{
		" dir -rwxr-xr-x",
		"deep dir -rwxr-xr-x",
		"deep/er dir -rwxr-xr-x",
		"deep/er/empty empty-dir -rwxr-xr-x",
		"deep/er/note.txt file -rw-r--r--",
		"deep/er/twin.txt file -rw-r--r--",
		"run.sh file -rwxr-xr-x",
		"static dir -rwxr-xr-x",
		"static/site.css file -rw-r--r--",
		"templates dir -rwxr-xr-x",
		"templates/a.html file -rw-r--r--",
		"uploads empty-dir -rwxr-xr-x",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("walk:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sum := sha256.Sum256([]byte("body{}"))
	for _, e := range es {
		if e.Rel == "static/site.css" && (e.Size != 6 || e.Sum != hex.EncodeToString(sum[:])) {
			t.Errorf("site.css: %+v", e)
		}
	}
	// A file is a tree of itself.
	one, err := walkFiles(filepath.Join(root, "custom/run.sh"), "./custom/run.sh")
	if err != nil || len(one) != 1 || one[0].Rel != "" || one[0].Dir || one[0].Mode != 0o755 {
		t.Fatalf("a file: %+v %v", one, err)
	}
}

// What a config cannot hold fails the walk, naming the file and the
// limit, and saying what to do.
func TestWalkFilesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string)
		want string
	}{
		{"symlink", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "real.txt"), []byte("x"), 0o644)
			if err := os.Symlink("real.txt", filepath.Join(dir, "link.txt")); err != nil {
				t.Fatal(err)
			}
		}, "./custom/link.txt is a symbolic link"},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "./custom/pipe is not a regular file"},
		{"too big", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "img"), 0o755)
			os.WriteFile(filepath.Join(dir, "img", "logo.png"), make([]byte, maxConfigSize), 0o644)
		}, "./custom/img/logo.png is 1000.0 KiB: on the swarm runtime each file of a ./dir mount becomes a Swarm config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "custom")
			os.Mkdir(dir, 0o755)
			tc.make(t, dir)
			_, err := walkFiles(dir, "./custom")
			if !errors.Is(err, ErrFilesDoNotFit) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "COPY in the Dockerfile") {
				t.Fatalf("walk: %v\nwant ErrFilesDoNotFit and %q", err, tc.want)
			}
		})
	}
	// One byte less fits.
	dir := writeTree(t, nil)
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, maxConfigSize-1), 0o644)
	if _, err := walkFiles(dir, "./custom"); err != nil {
		t.Fatalf("a file of %d bytes: %v", maxConfigSize-1, err)
	}
}

// A release's files are counted across its paths, each once: too many
// files or bytes fail, naming the paths.
func TestCheckFilesLimits(t *testing.T) {
	files := map[string]string{"custom/sub/a.txt": "a", "conf/b.txt": "b"}
	root := writeTree(t, files)
	// custom/sub is inside custom: counted once; a missing path is the
	// build's to report.
	if err := checkFiles(root, []string{"conf", "custom", "custom/sub", "missing"}); err != nil {
		t.Fatal(err)
	}

	many := map[string]string{}
	for i := 0; i <= maxFiles; i++ {
		many["custom/d"+strconv.Itoa(i/100)+"/f"+strconv.Itoa(i)] = "x"
	}
	err := checkFiles(writeTree(t, many), []string{"custom"})
	if !errors.Is(err, ErrFilesDoNotFit) || !strings.Contains(err.Error(), "./custom: more than 1000 files and empty directories") {
		t.Fatalf("too many files: %v", err)
	}

	big := map[string]string{}
	chunk := strings.Repeat("y", 400<<10)
	for i := 0; i < 14; i++ { // 5.5 MiB in each of two directories
		big["a/"+strconv.Itoa(i)] = chunk
		big["b/"+strconv.Itoa(i)] = chunk
	}
	err = checkFiles(writeTree(t, big), []string{"a", "b"})
	if !errors.Is(err, ErrFilesDoNotFit) || !strings.Contains(err.Error(), "./a, ./b: 10.9 MiB in all, more than 10.0 MiB") {
		t.Fatalf("too many bytes: %v", err)
	}
}

// A config is named by the app and its content and mode, within Swarm's
// 64 characters and its alphabet.
func TestConfigName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)
	e := fileEntry{Rel: "static/site.css", Mode: 0o644, Sum: strings.Repeat("ab", 32)}
	n := configName("moorage", "shop", e)
	if !strings.HasPrefix(n, "moorage-shop-") || len(n) != len("moorage-shop-")+20 || !valid.MatchString(n) {
		t.Fatalf("name %q", n)
	}
	moved := e
	moved.Rel = "elsewhere/same.css"
	if configName("moorage", "shop", moved) != n {
		t.Error("the same content and mode at another path is another config")
	}
	for what, other := range map[string]string{
		"mode":    configName("moorage", "shop", fileEntry{Mode: 0o755, Sum: e.Sum}),
		"content": configName("moorage", "shop", fileEntry{Mode: 0o644, Sum: strings.Repeat("cd", 32)}),
		"app":     configName("moorage", "shop2", e),
		"prefix":  configName("other", "shop", e),
	} {
		if other == n {
			t.Errorf("another %s, the same name %q", what, n)
		}
	}
	long := configName(strings.Repeat("p", 40), strings.Repeat("a", 63), e)
	if len(long) != 64 || !strings.HasPrefix(long, strings.Repeat("p", 40)+"-") || !valid.MatchString(long) {
		t.Errorf("long names: %q (%d)", long, len(long))
	}
}

// The task gets a config reference per file at its path under the
// target, with its mode, a tmpfs for the directory (read-only when it is
// empty), a read-only tmpfs per empty directory and /dev/null per empty
// file; a file mount is its config alone.
func TestTaskFiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		"custom/static/site.css": "body{}",
		"custom/run.sh":          "#!/bin/sh\n",
		"custom/uploads/":        "",
		"custom/__init__.py":     "",
		"empty/":                 "",
		"conf/app.ini":           "[app]\n",
	})
	os.Chmod(filepath.Join(root, "custom/run.sh"), 0o750)
	var ms []filesMount
	for _, m := range []struct{ name, rel, target string }{
		{"./custom", "custom", "/app/custom"},
		{"./empty", "empty", "/srv/empty"},
		{"./conf/app.ini", "conf/app.ini", "/etc/app.ini"},
	} {
		es, err := walkFiles(filepath.Join(root, m.rel), m.name)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, filesMount{Name: m.name, Root: filepath.Join(root, m.rel), Target: m.target, Entries: es})
	}
	ids := map[string]string{}
	for _, m := range ms {
		for _, e := range m.Entries {
			if !e.Dir {
				ids[configName("mt", "shop", e)] = "id-" + e.Rel
			}
		}
	}
	refs, mounts, err := taskFiles("mt", "shop", ms, ids)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.File.Name+" "+r.File.Mode.String()+" "+r.File.UID+":"+r.File.GID+" "+r.ConfigID)
		if r.ConfigName == "" || !strings.HasPrefix(r.ConfigName, "mt-shop-") {
			t.Errorf("config name %q", r.ConfigName)
		}
	}
	want := []string{
		"/app/custom/run.sh -rwxr-x--- 0:0 id-run.sh",
		"/app/custom/static/site.css -rw-r--r-- 0:0 id-static/site.css",
		"/etc/app.ini -rw-r--r-- 0:0 id-",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("configs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = nil
	for _, m := range mounts {
		ro := map[bool]string{true: "yes", false: "no"}[m.ReadOnly]
		switch {
		case m.Type == mount.TypeBind:
			got = append(got, m.Target+" bind "+m.Source+" ro="+ro)
		case m.Type != mount.TypeTmpfs || m.TmpfsOptions == nil:
			t.Fatalf("mount %+v", m)
		default:
			got = append(got, m.Target+" "+m.TmpfsOptions.Mode.String()+" ro="+ro)
		}
	}
	want = []string{
		"/app/custom -rwxr-xr-x ro=no",
		"/app/custom/__init__.py bind /dev/null ro=yes",
		"/app/custom/uploads -rwxr-xr-x ro=yes",
		"/srv/empty -rwxr-xr-x ro=yes",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tmpfs mounts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	delete(ids, configName("mt", "shop", ms[0].Entries[len(ms[0].Entries)-2]))
	if _, _, err := taskFiles("mt", "shop", ms, ids); err == nil || !strings.Contains(err.Error(), "./custom: no swarm config") {
		t.Errorf("a config missing: %v", err)
	}
}
