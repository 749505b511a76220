//go:build linux

package process

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// The per-app user. When the server runs as root (and Options.AppUsers is
// set, as the server does), an instance with no `user:` and no
// `allow_root: true` runs as its app's own unprivileged system user,
// created with useradd on the app's first start: moorage-APP, with a
// group of the same name and no supplementary groups. The app's
// directories are root's and that group's (mode 0750), so no other app
// can read them; its release directory is root's and read-only to it;
// its volumes and its instance's temporary directory are its own.

// appUserPrefix starts every app user's name.
const appUserPrefix = "moorage-"

// appUserComment is the GECOS field of an app user: how moorage tells its
// own users from one an operator made with the same name.
func appUserComment(app string) string { return "moorage app " + app }

// maxUserName is the longest name useradd accepts.
const maxUserName = 32

// appUserName is the name of app's user: moorage-APP, or when that is
// longer than useradd allows, the app name's first 15 characters and 8
// hex digits of its hash (moorage-a-very-long-app-n-1a2b3c4d).
func appUserName(app string) string {
	n := appUserPrefix + app
	if len(n) <= maxUserName {
		return n
	}
	sum := sha256.Sum256([]byte(app))
	short := strings.TrimRight(app[:15], "-")
	return appUserPrefix + short + "-" + hex.EncodeToString(sum[:4])
}

// appUsersMu serializes the creation of app users in this process;
// lockUsers (a file lock) does across the moorage servers of a machine.
var appUsersMu sync.Mutex

// usersLockPath is the file whose lock moorage holds while it looks up and
// creates an app user. useradd alone does not make that safe: it checks
// that the name is free before it takes its own lock, so several useradd
// of one name at once all succeed, each writing the user again with the
// uid it chose (measured: 5 at once, all exit 0). A server that created
// the user and gave it a volume could then run its instances as another
// uid, which could not write there.
const usersLockPath = "/run/lock/moorage-app-users.lock"

// lockUsers takes usersLockPath's lock (flock, so a killed holder's lock
// goes with it) and returns its release.
func lockUsers() (func(), error) {
	p := usersLockPath
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		p = filepath.Join(os.TempDir(), filepath.Base(p)) // no /run/lock
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the app users' lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("the app users' lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// appUser returns the credential of app's user, creating the user (and
// its group) when it does not exist. It refuses a user of that name that
// moorage did not make for this app.
func appUser(app string, log *slog.Logger) (*credential, error) {
	name := appUserName(app)
	appUsersMu.Lock()
	defer appUsersMu.Unlock()
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if err != nil && errors.As(err, &unknown) {
		// Look again, and create it, under the machine's lock: another
		// server may be creating it now.
		unlock, lerr := lockUsers()
		if lerr != nil {
			return nil, fmt.Errorf("create user %s for app %s: %w", name, app, lerr)
		}
		defer unlock()
		if u, err = user.Lookup(name); err != nil && errors.As(err, &unknown) {
			if err := createAppUser(app, name); err != nil {
				return nil, err
			}
			log.Info("created the app's user", "app", app, "user", name)
			if u, err = user.Lookup(name); err != nil {
				return nil, fmt.Errorf("user %s was created but cannot be looked up: %w", name, err)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("look up user %s: %w", name, err)
	}
	if u.Name != appUserComment(app) {
		return nil, fmt.Errorf("user %s exists but moorage did not create it for app %s (its comment is %q, not %q): rename or remove that user, or run the app as a user of your choice (user:) or as root (allow_root: true): %w",
			name, app, u.Name, appUserComment(app), runtime.ErrInvalidSpec)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("user %s has uid %d gid %d: an app user is never root; remove it and deploy again: %w", name, uid, gid, runtime.ErrInvalidSpec)
	}
	// No supplementary groups: an empty list clears them.
	return &credential{UID: uint32(uid), GID: uint32(gid), Groups: []uint32{}, Home: u.HomeDir, Name: name}, nil
}

// createAppUser runs useradd for app's user: a system user with a group
// of its own, no home directory and no login shell.
func createAppUser(app, name string) error {
	useradd, err := lookSystemTool("useradd")
	if err != nil {
		return fmt.Errorf("create user %s for app %s: useradd is not installed (Debian: apt-get install passwd), or run the app as a user of your choice (user:) or as root (allow_root: true): %w", name, app, runtime.ErrInvalidSpec)
	}
	shell := "/usr/sbin/nologin"
	if _, err := os.Stat(shell); err != nil {
		shell = "/bin/false"
	}
	args := []string{"--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", shell, "--comment", appUserComment(app), name}
	var out []byte
	for try := 0; ; try++ {
		out, err = exec.Command(useradd, args...).CombinedOutput()
		if err == nil {
			return nil
		}
		// Someone else made it meanwhile (not a moorage server, which
		// waits for usersLockPath: an administrator, say).
		if _, lerr := user.Lookup(name); lerr == nil {
			return nil
		}
		// Exit 1: /etc/passwd could not be updated, most often because
		// another useradd holds its lock: try again a few times.
		var ee *exec.ExitError
		if try == 9 || !errors.As(err, &ee) || ee.ExitCode() != 1 {
			break
		}
		time.Sleep(time.Duration(100*(try+1)) * time.Millisecond)
	}
	return fmt.Errorf("create user %s for app %s: useradd %s: %v: %s", name, app, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
}

// lookSystemTool finds an administration tool in PATH or the sbin
// directories, which a server's PATH may lack.
func lookSystemTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// credentialFor is who instance s runs as: its `user:`; else, when the
// server runs as root with app users on and s does not allow root, its
// app's user; else nil, the server's own user. An explicit user gets the
// app's group as well when there is one, to reach the app's directories.
// group is the group the app's directories get (-1: app users are off,
// they are left as they are).
func (r *Runtime) credentialFor(s *runtime.InstanceSpec) (cred *credential, group int, err error) {
	if !r.appUsers() {
		cred, err = resolveUser(s.User)
		return cred, -1, err
	}
	if (s.User == "" && s.AllowRoot) || isRootUser(s.User) {
		// As root: the app's directories keep its group when it has one.
		cred, err = resolveUser(s.User)
		return cred, existingAppGroup(s.App), err
	}
	app, err := appUser(s.App, r.log)
	if err != nil {
		return nil, -1, err
	}
	if s.User == "" {
		return app, int(app.GID), nil
	}
	if cred, err = resolveUser(s.User); err != nil {
		return nil, -1, err
	}
	if cred != nil && !containsGID(cred, app.GID) {
		cred.Groups = append(cred.Groups, app.GID)
	}
	return cred, int(app.GID), nil
}

// appUsers reports whether instances run as their app's user by default.
func (r *Runtime) appUsers() bool { return r.opts.AppUsers && os.Geteuid() == 0 }

// existingAppGroup is the gid of app's user when it exists (and is
// moorage's), else the server's group.
func existingAppGroup(app string) int {
	if u, err := user.Lookup(appUserName(app)); err == nil && u.Name == appUserComment(app) {
		if gid, err := strconv.Atoi(u.Gid); err == nil {
			return gid
		}
	}
	return os.Getegid()
}

func containsGID(c *credential, gid uint32) bool {
	if c.GID == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// isRootUser reports whether a `user:` names root.
func isRootUser(u string) bool {
	name, _, _ := strings.Cut(u, ":")
	return name == "root" || name == "0"
}

// appDir makes dir (an app's directory under releases/, volumes/,
// accessories/ or accessory-files/) root's and the app group's, mode
// 0750, so that only the app's instances reach what is inside; its
// parent stays traversable only (0711). group < 0 leaves the owner
// alone.
func appDir(dir string, group int, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return err
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if group < 0 {
		return nil
	}
	// The top directory (volumes/...) is traversable, not listable.
	if pfi, err := os.Stat(filepath.Dir(dir)); err != nil {
		return err
	} else if pfi.Mode().Perm() != 0o711 {
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			return err
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil || int(st.Gid) != group || int(st.Uid) != os.Geteuid() {
		if err := os.Lchown(dir, os.Geteuid(), group); err != nil {
			return err
		}
	}
	if fi.Mode().Perm() != mode {
		return os.Chmod(dir, mode)
	}
	return nil
}

// releaseMode is the mode a file of a release gets: nobody but its owner
// (the server) writes it, and whoever may read the release reads what the
// owner reads and executes what the owner executes.
func releaseMode(m fs.FileMode) fs.FileMode {
	perm := m.Perm()
	perm &^= 0o022
	perm |= (perm & 0o500) >> 3
	perm |= (perm & 0o500) >> 6
	return m&^fs.ModePerm | perm
}

// sealRelease makes the release directory dir immutable to its instances:
// every file and directory the server's (no set-id bits), read-only to
// anyone else (releaseMode); symlinks (the volumes linked in) are left as
// they are. With group >= 0 the directory itself gets that group, which
// marks the release sealed for that group (see sealed).
func sealRelease(dir string, group int) error {
	uid, gid := os.Geteuid(), os.Getegid()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != uid || int(st.Gid) != gid) {
			if err := os.Lchown(p, uid, gid); err != nil {
				return err
			}
		}
		m := fi.Mode()
		want := releaseMode(m) &^ (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if want != m {
			if err := os.Chmod(p, want.Perm()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("make release %s read-only: %w", dir, err)
	}
	if group >= 0 {
		if err := os.Lchown(dir, uid, group); err != nil {
			return fmt.Errorf("make release %s read-only: %w", dir, err)
		}
	}
	return nil
}

// sealed reports whether release dir was sealed for group: a release built
// before app users existed (an upgrade) is sealed on its first start.
func sealed(dir string, group int) bool {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Gid) == group
}

// handOverTree gives dir and everything in it still owned by the server
// to cred's user: a volume or accessory directory an app wrote while it
// ran as root, before it had a user of its own (an upgrade). Symlinks are
// changed, never followed; files with more than one link are left alone.
func handOverTree(dir string, cred *credential) error {
	from := os.Geteuid()
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		// A file with other hard links may be one outside the volume (a
		// root process could link anything): it keeps its owner.
		if !ok || int(st.Uid) != from || (!d.IsDir() && st.Nlink > 1) {
			return nil
		}
		return os.Lchown(p, int(cred.UID), int(cred.GID))
	})
}

// reachable checks that cred's user can reach dir: every directory above
// it lets others through. Otherwise the instance would fail with a bare
// "permission denied".
func reachable(dir string, cred *credential) error {
	if cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		ok := fi.Mode().Perm()&0o001 != 0 ||
			(st != nil && st.Uid == cred.UID && fi.Mode().Perm()&0o100 != 0) ||
			(st != nil && containsGID(cred, st.Gid) && fi.Mode().Perm()&0o010 != 0)
		if !ok {
			return fmt.Errorf("user %s cannot reach %s: %s is mode %04o: make it traversable (chmod o+x %s), or run the app as root (allow_root: true): %w",
				cred.Name, dir, p, fi.Mode().Perm(), p, runtime.ErrInvalidSpec)
		}
		if p == "/" {
			return nil
		}
	}
}
