package server

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdLock takes the data dir's lock through a descriptor of its own (a
// flock conflicts across open files, in one process too), with pid
// written in the file, as the server that took it would have.
func holdLock(t *testing.T, dir string, pid int) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "moorage.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	t.Cleanup(func() { f.Close() })
	return f
}

// A data dir another live server holds is refused at once, and the error
// names the process that holds the lock (from /proc/locks).
func TestDataDirLockRefusedNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	holdLock(t, dir, os.Getpid())
	s := &Server{cfg: Config{DataDir: dir}}
	err := s.lockDataDir()
	if !errors.Is(err, ErrDataDirBusy) {
		t.Fatalf("lock: %v, want ErrDataDirBusy", err)
	}
	if want := "the lock is held by pid " + strconv.Itoa(os.Getpid()) + " ("; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder (%q)", err, want)
	}
	if !lockOwnerAlive(dir) {
		t.Errorf("the lock's owner, this test, reads as gone")
	}
}

// When the server the lock file names is gone but its lock is still held
// for a moment (a process it was starting keeps a copy of the
// descriptor), a server started at once waits for the lock instead of
// failing.
func TestDataDirLockOfAGoneServerIsWaitedFor(t *testing.T) {
	dir := t.TempDir()
	f := holdLock(t, dir, 1<<22+7) // above pid_max's default: no such process
	if lockOwnerAlive(dir) {
		t.Fatalf("a pid that does not run reads as alive")
	}
	s := &Server{cfg: Config{DataDir: dir}}
	go func() {
		time.Sleep(200 * time.Millisecond) // the lingering holder lets go
		f.Close()
	}()
	if err := s.waitLockDataDir(t.Context(), deadOwnerLockWait); err != nil {
		t.Fatalf("wait for the lock: %v", err)
	}
	defer s.lockFile.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "moorage.lock"))
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file says %q, want this process's pid", b)
	}
}
