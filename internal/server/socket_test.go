package server

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestListenUnixGroup(t *testing.T) {
	dir := t.TempDir()
	// A group other than ours, so the chown is visible.
	own := os.Getgid()
	var group *user.Group
	for _, name := range []string{"daemon", "nogroup", "bin", "sys", "adm"} {
		if g, err := user.LookupGroup(name); err == nil && g.Gid != strconv.Itoa(own) {
			group = g
			break
		}
	}
	if group == nil {
		t.Fatal("no system group to hand the socket to (daemon, nogroup, bin, sys, adm)")
	}
	if os.Geteuid() != 0 {
		t.Skip("giving a socket to a group the user is not in needs root")
	}
	path := filepath.Join(dir, "moorage.sock")
	ln, err := listenUnix(path, group.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o660 {
		t.Errorf("socket mode %o, want 660", got)
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; strconv.Itoa(int(gid)) != group.Gid {
		t.Errorf("socket group %d, want %s (%s)", gid, group.Gid, group.Name)
	}

	_, err = listenUnix(filepath.Join(dir, "other.sock"), "no-such-group-moorage")
	if err == nil || !strings.Contains(err.Error(), "--socket-group no-such-group-moorage") {
		t.Errorf("unknown group: %v, want an error naming the flag", err)
	}
}
