package containers

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

func TestNames(t *testing.T) {
	n := Names{Prefix: "mrt"}
	if got := n.Instance("shop-web-v3-1"); got != "mrt-shop-web-v3-1" {
		t.Errorf("Instance: %q", got)
	}
	if got := n.Network("shop"); got != "mrt-shop" {
		t.Errorf("Network: %q", got)
	}
	if got := n.Volume("shop", "data"); got != "mrt_shop_data" {
		t.Errorf("Volume: %q", got)
	}
	if !n.Owned(map[string]string{LabelPrefix: "mrt"}) || n.Owned(map[string]string{LabelPrefix: "mrtother"}) || n.Owned(nil) {
		t.Error("Owned: a wrong verdict")
	}
	f := n.Filter()
	if !f["label"]["moorage.prefix=mrt"] || len(f) != 1 || len(f["label"]) != 1 {
		t.Errorf("Filter: %v", f)
	}
	if ValidPrefix("swarm", "mrt-1.x_y") != nil {
		t.Error("a good prefix refused")
	}
	for _, p := range []string{"", "Moorage", "-x", "a/b", strings.Repeat("a", 41)} {
		err := ValidPrefix("docker", p)
		if err == nil || !strings.HasPrefix(err.Error(), "docker runtime: prefix ") {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
}

// The labels an instance is made with read back as the same instance.
func TestLabelsRoundTrip(t *testing.T) {
	s := runtime.InstanceSpec{App: "shop", Service: "web", Release: "v3", Index: 2, Kind: runtime.KindService, Hash: "abc", Port: 8080}
	l := Names{Prefix: "moorage"}.Labels(&s)
	want := map[string]string{
		"moorage.prefix": "moorage", "moorage.app": "shop", "moorage.service": "web", "moorage.release": "v3",
		"moorage.index": "2", "moorage.kind": "service", "moorage.hash": "abc", "moorage.instance": s.ID(), "moorage.port": "8080",
	}
	if len(l) != len(want) {
		t.Fatalf("labels %v, want %v", l, want)
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	in := Instance(l)
	if in.ID != s.ID() || in.App != "shop" || in.Service != "web" || in.Release != "v3" || in.Index != 2 ||
		in.Kind != runtime.KindService || in.Hash != "abc" || in.Port != 8080 || in.State != "" {
		t.Errorf("read back %+v", in)
	}
	s.Port = 0
	l = Names{Prefix: "moorage"}.Labels(&s)
	if _, ok := l[LabelPort]; ok {
		t.Errorf("a port label without a port: %v", l)
	}
	if in := Instance(l); in.Port != 0 {
		t.Errorf("port %d without a port label", in.Port)
	}
}

func TestValidateSpec(t *testing.T) {
	good := runtime.InstanceSpec{App: "a", Service: "web", Kind: runtime.KindService, Port: 80, Publish: true,
		Mounts: []runtime.Mount{{Name: "data", Target: "/d"}, {Name: "/srv/conf", Target: "/c"}}}
	if err := ValidateSpec(&good, nil); err != nil {
		t.Fatal(err)
	}
	s := good
	s.Port = 0
	if err := ValidateSpec(&s, nil); !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "publishing needs a container port") {
		t.Errorf("publish without a port: %v", err)
	}
	s = good
	s.Mounts = []runtime.Mount{{Name: "data", Target: "d"}}
	if err := ValidateSpec(&s, nil); !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), `mount target "d" is not an absolute path`) {
		t.Errorf("a relative target: %v", err)
	}
	s = good
	s.App = "../x"
	if err := ValidateSpec(&s, nil); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("seam's rules: %v", err)
	}
	// The runtime's own rule sees each mount once its target passed, in
	// order.
	var seen []string
	no := errors.New("no")
	s = good
	s.Mounts = []runtime.Mount{{Name: "data", Target: "/d"}, {Name: "/srv/conf", Target: "/c"}, {Name: "x", Target: "rel"}}
	err := ValidateSpec(&s, func(m runtime.Mount) error {
		seen = append(seen, m.Name)
		if m.Name == "/srv/conf" {
			return no
		}
		return nil
	})
	if err != no || strings.Join(seen, ",") != "data,/srv/conf" {
		t.Errorf("mount rule: %v, saw %v", err, seen)
	}
	seen = nil
	s.Mounts = []runtime.Mount{{Name: "/srv/conf", Target: "rel"}}
	err = ValidateSpec(&s, func(m runtime.Mount) error { seen = append(seen, m.Name); return no })
	if !errors.Is(err, runtime.ErrInvalidSpec) || len(seen) != 0 {
		t.Errorf("a relative target goes before the runtime's rule: %v, saw %v", err, seen)
	}
}

func TestHostnameAndStop(t *testing.T) {
	if h := Hostname("shop-web-v3-1"); h != "shop-web-v3-1" {
		t.Errorf("Hostname: %q", h)
	}
	long := strings.Repeat("a", 62) + "-b"
	if h := Hostname(long); h != strings.Repeat("a", 62) {
		t.Errorf("Hostname of a long id: %q", h)
	}
	sig, secs := Stop(&runtime.InstanceSpec{})
	if sig != "SIGTERM" || secs != 10 {
		t.Errorf("defaults: %s %d", sig, secs)
	}
	sig, secs = Stop(&runtime.InstanceSpec{StopSignal: syscall.SIGUSR1, StopTimeout: 2500 * time.Millisecond})
	if sig != "SIGUSR1" || secs != 3 {
		t.Errorf("SIGUSR1, 2.5 s: %s %d", sig, secs)
	}
	if sig, _ := Stop(&runtime.InstanceSpec{StopSignal: syscall.Signal(40)}); sig != "40" {
		t.Errorf("a signal without a name: %q", sig)
	}
}

func TestNumericUser(t *testing.T) {
	for _, c := range []struct {
		user     string
		uid, gid int
	}{
		{"", 0, 0}, {"root", 0, 0}, {"0:0", 0, 0}, {"70", 70, 70}, {"70:71", 70, 71},
		{"999:staff", 999, 999}, {"postgres", -1, -1}, {"postgres:70", -1, -1},
	} {
		if uid, gid := NumericUser(c.user); uid != c.uid || gid != c.gid {
			t.Errorf("NumericUser(%q) = %d, %d; want %d, %d", c.user, uid, gid, c.uid, c.gid)
		}
	}
}
