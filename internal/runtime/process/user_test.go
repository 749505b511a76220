//go:build linux

package process

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// As root, `user:` runs the instance, its Exec and one-offs as that user,
// and hands it the fresh volumes it mounts.
func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running as another user needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody on this machine")
	}
	f := newFixture(t)
	// The data dir must be traversable by the user (the server makes it
	// 0711), the release directory readable (Build makes it 0755).
	os.Chmod(filepath.Dir(f.dir), 0o711)
	os.Chmod(f.dir, 0o711)
	os.Chmod(filepath.Dir(f.art.Ref), 0o711)
	os.Chmod(filepath.Dir(filepath.Dir(f.art.Ref)), 0o711)
	os.Chmod(f.art.Ref, 0o755)
	s := f.spec("worker", "id -u > $MOORAGE_VOLUME_DATA/uid; exec sleep 600")
	s.User = "nobody"
	s.Mounts = []runtime.Mount{{Name: "data", Target: "/app/data"}}
	f.start(s)
	vol := filepath.Join(f.dir, "volumes", "app", "data")
	waitFor(t, "the instance to write its uid", func() bool {
		b, _ := os.ReadFile(filepath.Join(vol, "uid"))
		return strings.TrimSpace(string(b)) == u.Uid
	})
	var fi syscall.Stat_t
	syscall.Stat(vol, &fi)
	if strconv.Itoa(int(fi.Uid)) != u.Uid {
		t.Fatalf("volume owned by %d, want %s", fi.Uid, u.Uid)
	}
	var out bytes.Buffer
	code, err := f.rt.Exec(f.ctx, s.ID(), runtime.ExecSpec{Cmd: []string{"id", "-u"}, Stdout: &out})
	if err != nil || code != 0 || strings.TrimSpace(out.String()) != u.Uid {
		t.Fatalf("exec runs as %q (%d %v), want %s", out.String(), code, err, u.Uid)
	}
	out.Reset()
	task := runtime.RunSpec{InstanceSpec: runtime.InstanceSpec{App: "app", Service: "task", Release: "v1", Kind: runtime.KindTask,
		Artifact: f.art, Command: []string{"id", "-u"}, User: "nobody"}, Stdout: &out}
	if code, err := f.rt.Run(f.ctx, task); err != nil || code != 0 || strings.TrimSpace(out.String()) != u.Uid {
		t.Fatalf("one-off runs as %q (%d %v)", out.String(), code, err)
	}
	s2 := f.spec("other", "sleep 600")
	s2.User = "no-such-user-here"
	if _, err := f.rt.Start(f.ctx, s2); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestPruneLogs(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.dir, "logs", "app")
	os.MkdirAll(dir, 0o700)
	old := time.Now().Add(-48 * time.Hour)
	write := func(name string, size int, mod time.Time) {
		p := filepath.Join(dir, name)
		os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o600)
		os.Chtimes(p, mod, mod)
	}
	write("app-web-v1-1.log", 100, old)          // gone, removed instance, old
	write("app-web-v1-1.log.1", 100, old)        // its rotation
	write("app-web-v2-1.log", 300, time.Now())   // removed but recent
	write("app-web-v3-1.log", 500, old)          // kept (running) although old
	write("app-web-v3-1.log.1", 400, time.Now()) // kept's rotation
	keep := func(id string) bool { return id == "app-web-v3-1" }
	freed, err := f.rt.PruneLogs(f.ctx, "app", runtime.LogRetention{MaxAge: 24 * time.Hour, Keep: keep})
	if err != nil || freed != 200 {
		t.Fatalf("age prune freed %d, %v", freed, err)
	}
	// Over size: the removed instance's recent log goes first, then the
	// kept instance's rotation; its current file never.
	freed, err = f.rt.PruneLogs(f.ctx, "app", runtime.LogRetention{MaxBytes: 600, Keep: keep})
	if err != nil || freed != 700 {
		t.Fatalf("size prune freed %d, %v", freed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app-web-v3-1.log")); err != nil {
		t.Fatalf("the running instance's log was deleted")
	}
}
