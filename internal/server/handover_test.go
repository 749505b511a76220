package server

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/proxy"
)

// The dup passed to a new process shares the socket with this one: it
// must stay non-blocking, or this process's accept could not be
// interrupted and its shutdown would hang.
func TestDupListenerKeepsNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd, err := dupListener(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		t.Fatal("the shared socket became blocking")
	}
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || fdfl&unix.FD_CLOEXEC == 0 {
		t.Fatalf("the dup is not close-on-exec (flags %x, %v)", fdfl, err)
	}
	// This process still accepts, and Close interrupts a pending Accept.
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	ln.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt Accept")
	}
}

func TestSameAddr(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	any6 := &net.TCPAddr{IP: net.IPv6zero, Port: 80}
	for _, c := range []struct {
		network, addr string
		a             net.Addr
		want          bool
	}{
		{"tcp", "127.0.0.1:8080", tcp, true},
		{"tcp", ":8080", tcp, true},
		{"tcp", "localhost:8080", tcp, true},
		{"tcp", "127.0.0.2:8080", tcp, false},
		{"tcp", ":8081", tcp, false},
		{"tcp", ":80", any6, true},
		{"unix", "/run/m.sock", &net.UnixAddr{Name: "/run/m.sock", Net: "unix"}, true},
		{"unix", "/run/m.sock", &net.UnixAddr{Name: "/run/other.sock", Net: "unix"}, false},
		{"tcp", "/run/m.sock", &net.UnixAddr{Name: "/run/m.sock", Net: "unix"}, false},
	} {
		if got := sameAddr(c.network, c.addr, c.a); got != c.want {
			t.Errorf("sameAddr(%s, %s, %v) = %v, want %v", c.network, c.addr, c.a, got, c.want)
		}
	}
}

// takeInherited ignores LISTEN_FDS meant for another process, and clears
// the variables either way.
func TestTakeInheritedOtherPID(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "2")
	in, err := takeInherited()
	if err != nil {
		t.Fatal(err)
	}
	if in.any() {
		t.Fatal("took sockets passed to pid 1")
	}
	if os.Getenv("LISTEN_FDS") != "" {
		t.Fatal("LISTEN_FDS left for children")
	}
}

func TestRoutesFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := proxy.New(proxy.Options{})
	defer p.Close()
	s := &Server{cfg: Config{DataDir: dir}, proxy: p, log: discardLogger()}
	rts := []proxy.RouteTargets{{
		Route:   proxy.Route{App: "a", Service: "web", Hosts: []string{"a.example.com"}, Health: proxy.HealthCheck{Path: "/up", Interval: time.Second}, DrainTimeout: 3 * time.Second},
		Targets: []proxy.Target{{ID: "a-web-v1-1", Addr: "127.0.0.1:1"}},
	}}
	if err := p.SetApp("a", rts); err != nil {
		t.Fatal(err)
	}
	s.saveRoutes()
	got, err := loadRoutes(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := p.Routes()
	if !reflect.DeepEqual(got.Apps, want) {
		t.Fatalf("routes.json holds %+v, want %+v", got.Apps, want)
	}
	// A new proxy takes them as they are.
	q := proxy.New(proxy.Options{})
	defer q.Close()
	if err := q.SetApp("a", got.Apps["a"]); err != nil {
		t.Fatal(err)
	}
	// No leftover temporary files.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != routesFile {
		t.Fatalf("data dir holds %v", ents)
	}
	if fi, _ := os.Stat(filepath.Join(dir, routesFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("routes.json mode %o", fi.Mode().Perm())
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
