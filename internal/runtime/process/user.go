//go:build linux

package process

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// credential is who an instance runs as when the spec names a user.
type credential struct {
	UID, GID uint32
	Groups   []uint32
	Home     string
	Name     string
}

// resolveUser turns a spec's `user:` ("postgres", "999", "999:999",
// "app:app") into a credential. nil means "as the server". Running as
// another user needs the server to run as root.
func resolveUser(spec string) (*credential, error) {
	if spec == "" {
		return nil, nil
	}
	name, group, _ := strings.Cut(spec, ":")
	c := &credential{}
	if u, err := user.Lookup(name); err == nil {
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.UID, c.GID, c.Home, c.Name = uint32(uid), uint32(gid), u.HomeDir, u.Username
		if gids, err := u.GroupIds(); err == nil {
			for _, g := range gids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					c.Groups = append(c.Groups, uint32(n))
				}
			}
		}
	} else if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		c.UID, c.GID, c.Name = uint32(uid), uint32(uid), name
	} else {
		return nil, fmt.Errorf("user %q does not exist on this server: %w", name, runtime.ErrInvalidSpec)
	}
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ := strconv.ParseUint(g.Gid, 10, 32)
			c.GID = uint32(gid)
		} else if gid, err := strconv.ParseUint(group, 10, 32); err == nil {
			c.GID = uint32(gid)
		} else {
			return nil, fmt.Errorf("group %q does not exist on this server: %w", group, runtime.ErrInvalidSpec)
		}
		c.Groups = []uint32{c.GID}
	}
	if uint32(os.Geteuid()) == c.UID && uint32(os.Getegid()) == c.GID {
		return nil, nil // already that user
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("user %q: the process runtime runs instances as another user only when the server runs as root: %w", spec, runtime.ErrInvalidSpec)
	}
	return c, nil
}

func (c *credential) sys() *syscall.Credential {
	if c == nil {
		return nil
	}
	return &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
}

// handOver gives a directory the instance's user owns to that user when it
// still belongs to the server (a fresh volume or accessory directory), so
// the instance can write where it must. With tree (app users: the app's
// directories above are already the app group's), what is inside and
// still the server's goes too: the files an app wrote as root before it
// had a user of its own.
func (c *credential) handOver(dir string, tree bool) error {
	if c == nil {
		return nil
	}
	if tree {
		if fi, err := os.Lstat(dir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
				if err := handOverTree(dir, c); err != nil {
					return fmt.Errorf("give %s to user %s: %w", dir, c.Name, err)
				}
			}
		}
		return nil
	}
	// Someone else's already: leave it.
	if changed, err := seam.HandOver(dir, os.Geteuid(), int(c.UID), int(c.GID), false); err != nil {
		return fmt.Errorf("give %s to user %s: %w", dir, c.Name, err)
	} else if !changed {
		return nil
	}
	// Parents must be traversable by the user.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		pfi, err := os.Stat(p)
		if err != nil {
			break
		}
		if pfi.Mode().Perm()&0o001 == 0 {
			os.Chmod(p, pfi.Mode().Perm()|0o011)
		}
		if filepath.Base(p) == "volumes" || filepath.Base(p) == "accessories" {
			break
		}
	}
	return nil
}

// processCredential is who a running process runs as (for Exec).
func processCredential(pid int) *syscall.Credential {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	var uid, gid uint64
	var groups []uint32
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Uid:":
			uid, _ = strconv.ParseUint(f[1], 10, 32)
			found++
		case "Gid:":
			gid, _ = strconv.ParseUint(f[1], 10, 32)
			found++
		case "Groups:":
			for _, g := range f[1:] {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					groups = append(groups, uint32(n))
				}
			}
		}
	}
	if found < 2 || (uint32(uid) == uint32(os.Geteuid()) && uint32(gid) == uint32(os.Getegid())) {
		return nil
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
}
