//go:build linux

package process

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// useradd's default NAME_REGEX on Debian, and its 32-character limit.
var userNameRE = regexp.MustCompile(`^[a-z_][-a-z0-9_]*$`)

func TestAppUserName(t *testing.T) {
	long := "a-very-long-application-name-that-goes-on"
	cases := map[string]string{
		"hello":                 "moorage-hello",
		"x":                     "moorage-x",
		strings.Repeat("a", 24): "moorage-" + strings.Repeat("a", 24),
	}
	for app, want := range cases {
		if got := appUserName(app); got != want {
			t.Errorf("appUserName(%q) = %q, want %q", app, got, want)
		}
	}
	seen := map[string]string{}
	for _, app := range []string{long, long + "-2", strings.Repeat("b", 63), "abcdefghijklmn-" + strings.Repeat("c", 20), strings.Repeat("a", 25)} {
		n := appUserName(app)
		if len(n) > maxUserName || !userNameRE.MatchString(n) || !strings.HasPrefix(n, appUserPrefix) {
			t.Errorf("appUserName(%q) = %q: not a valid user name of at most %d characters", app, n, maxUserName)
		}
		if strings.Contains(n, "--") {
			t.Errorf("appUserName(%q) = %q: doubled hyphen", app, n)
		}
		if other, ok := seen[n]; ok {
			t.Errorf("apps %q and %q share user %q", app, other, n)
		}
		seen[n] = app
	}
}

func TestReleaseMode(t *testing.T) {
	for _, c := range []struct{ in, want fs.FileMode }{
		{0o600, 0o644},
		{0o700, 0o755},
		{0o666, 0o644},
		{0o777, 0o755},
		{0o644, 0o644},
		{0o400, 0o444},
		{fs.ModeDir | 0o777, fs.ModeDir | 0o755},
		{fs.ModeDir | 0o700, fs.ModeDir | 0o755},
	} {
		if got := releaseMode(c.in); got != c.want {
			t.Errorf("releaseMode(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// A sealed release has no file or directory anyone but the server may
// write, keeps its symlinks (the volumes linked in) as they are, and
// drops set-id bits.
func TestSealRelease(t *testing.T) {
	dir := t.TempDir()
	vol := t.TempDir()
	os.Chmod(vol, 0o777)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o777))
	must(os.WriteFile(filepath.Join(dir, "sub", "w"), nil, 0o666))
	must(os.WriteFile(filepath.Join(dir, "secret"), nil, 0o600))
	must(os.WriteFile(filepath.Join(dir, "suid"), nil, 0o755))
	must(os.Chmod(filepath.Join(dir, "suid"), 0o4755|fs.ModeSetuid))
	must(os.Chmod(filepath.Join(dir, "sub"), 0o777))
	must(os.Chmod(filepath.Join(dir, "sub", "w"), 0o666))
	must(os.Symlink(vol, filepath.Join(dir, "data")))
	must(sealRelease(dir, -1))
	want := map[string]fs.FileMode{"sub": fs.ModeDir | 0o755, "sub/w": 0o644, "secret": 0o644, "suid": 0o755}
	for rel, m := range want {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		must(err)
		if fi.Mode() != m {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), m)
		}
	}
	if fi, _ := os.Stat(vol); fi.Mode().Perm() != 0o777 {
		t.Errorf("the linked volume's mode changed to %v", fi.Mode())
	}
}

// What a root process left in a volume becomes the app user's, except a
// file with other hard links; symlinks are changed, not followed.
func TestHandOverTree(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatal("needs root to change owners; CI runs the tests as root")
		}
		t.Skip("needs root to change owners")
	}
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(outside, nil, 0o600))
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sub", "f"), nil, 0o644))
	must(os.Link(outside, filepath.Join(dir, "linked")))
	must(os.Symlink(outside, filepath.Join(dir, "sym")))
	c := &credential{UID: 4242, GID: 4243, Name: "test"}
	must(handOverTree(dir, c))
	owner := func(p string) (int, int) {
		fi, err := os.Lstat(p)
		must(err)
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid)
	}
	for _, p := range []string{dir, filepath.Join(dir, "sub"), filepath.Join(dir, "sub", "f"), filepath.Join(dir, "sym")} {
		if u, g := owner(p); u != 4242 || g != 4243 {
			t.Errorf("%s: owner %d:%d, want 4242:4243", p, u, g)
		}
	}
	if u, _ := owner(outside); u != 0 {
		t.Errorf("the file linked from outside was given away: uid %d", u)
	}
}

// appUserHelperEnv makes the test binary a server that needs the app
// user of the app it names: it waits for the go file (so that all of them
// start at once), calls appUser and prints the uid and gid it got.
const appUserHelperEnv = "MOORAGE_APPUSER_TEST_APP"

func appUserHelper(app string) int {
	start := os.Getenv("MOORAGE_APPUSER_TEST_GO")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "no go file", start)
			return 2
		}
	}
	c, err := appUser(app, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d:%d\n", c.UID, c.GID)
	return 0
}

// Several servers on one machine that need the same new app user at once
// (the end-to-end tests do, and so would two servers deploying one app
// name) all get the user that stays in /etc/passwd. useradd alone did not
// do that: 5 at once all succeeded, each writing the user with a uid of
// its own, and a server that gave a volume to one uid ran its worker as
// another, which could not write there.
func TestAppUserCreatedOnceAcrossServers(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatal("needs root to create users; CI runs the tests as root")
		}
		t.Skip("needs root to create users")
	}
	app := fmt.Sprintf("race%d", os.Getpid()%100000)
	name := appUserName(app)
	removeUser := func() {
		exec.Command("userdel", name).Run()
		exec.Command("groupdel", name).Run()
	}
	removeUser()
	t.Cleanup(removeUser)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	goFile := filepath.Join(t.TempDir(), "go")
	const servers = 6
	outs := make([]*bytes.Buffer, servers)
	cmds := make([]*exec.Cmd, servers)
	for i := range cmds {
		outs[i] = &bytes.Buffer{}
		cmds[i] = exec.Command(exe)
		cmds[i].Env = append(os.Environ(), appUserHelperEnv+"="+app, "MOORAGE_APPUSER_TEST_GO="+goFile)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("server %d: %v: %s", i, err, outs[i])
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	want := u.Uid + ":" + u.Gid
	for i, o := range outs {
		if got := strings.TrimSpace(o.String()); got != want {
			t.Errorf("server %d got user %s as %s, but /etc/passwd has %s", i, name, got, want)
		}
	}
	b, _ := os.ReadFile("/etc/passwd")
	if n := strings.Count(string(b), "\n"+name+":"); n != 1 {
		t.Errorf("/etc/passwd has %d entries for %s", n, name)
	}
}
