package e2e

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// probeScript reports, one key=value a line, who the instance runs as
// and what it may do: to its own release, volume and temporary directory,
// and to another app's release and volume (OTHER_* in its env).
const probeScript = `#!/bin/sh
try() { if sh -c "$2" >/dev/null 2>&1; then echo "$1=yes"; else echo "$1=no"; fi; }
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "tmpdir=$TMPDIR"
try write-release 'echo x >> message.txt'
try create-in-release 'echo x > probe-was-here'
try chmod-release 'chmod 777 .'
try write-volume 'echo x > "$MOORAGE_VOLUME_DATA/probe-written"'
try write-tmp 'test -n "$TMPDIR" && test "$TMPDIR" != /tmp && echo x > "$TMPDIR/probe"'
try read-other-release 'cat "$OTHER_RELEASE/message.txt"'
try list-other-releases 'ls "$OTHER_RELEASES"'
try read-other-volume 'cat "$OTHER_VOLUME/secret"'
`

// probeApp is hello as app name, on host name.test, with a probe service
// that writes probeScript's report to its volume (probe-RELEASE.out) and
// then sleeps; env is more of the spec's env.
func probeApp(t *testing.T, name, env, probeExtra string) string {
	t.Helper()
	edits := append(slices.Clone(fastSpec), "app: hello", "app: "+name,
		"    health: {path: /healthz, interval: 1s}", "    health: {path: /healthz, interval: 1s}\n    http: {hosts: ["+name+".test]}",
		"  scheduler:", "  probe:\n    command: sh -c 'sh probe.sh > $MOORAGE_VOLUME_DATA/.probe.tmp && mv $MOORAGE_VOLUME_DATA/.probe.tmp $MOORAGE_VOLUME_DATA/probe-$MOORAGE_RELEASE.out; exec sleep 100000'\n    min_ready: 1s\n"+probeExtra+"  scheduler:")
	if env != "" {
		edits = append(edits, "deploy:", "env:\n"+env+"deploy:")
	}
	dir := helloApp(t, edits...)
	if err := os.WriteFile(filepath.Join(dir, "probe.sh"), []byte(probeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// parseProbe reads probeScript's report.
func parseProbe(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

// checkProbe compares a report with what an app running as u may do.
func checkProbe(t *testing.T, what string, got map[string]string, u *user.User) {
	t.Helper()
	want := map[string]string{
		"uid": u.Uid, "gid": u.Gid, "groups": u.Gid,
		"write-release": "no", "create-in-release": "no", "chmod-release": "no",
		"write-volume": "yes", "write-tmp": "yes",
		"read-other-release": "no", "list-other-releases": "no", "read-other-volume": "no",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want %q (report %v)", what, k, got[k], v, got)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatal("app users need the server to run as root; CI runs the e2e tests as root")
		}
		t.Skip("app users need the server to run as root")
	}
}

// On the process runtime, a server running as root runs each app as its
// own unprivileged user: a service and a one-off of app usera run as
// moorage-usera (not root, no other group), cannot change their release
// (which stays as uploaded), cannot read app userb's release or volume,
// and can write to their volume and their own $TMPDIR, which goes with
// the instance. With allow_root: true, the service runs as root.
func TestProcessAppUsers(t *testing.T) {
	parallel(t)
	requireRoot(t)
	s := startServerRT(t, "process")

	b := probeApp(t, "userb", "", "")
	s.deploy(b, 0)
	otherVolume := filepath.Join(s.dataDir, "volumes", "userb", "data")
	if err := os.WriteFile(filepath.Join(otherVolume, "secret"), []byte("b's secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	otherRelease := filepath.Join(s.dataDir, "releases", "userb", "v1")
	if _, err := os.Stat(filepath.Join(otherRelease, "message.txt")); err != nil {
		t.Fatalf("the probe would look for userb's release at the wrong place: %v", err)
	}

	env := fmt.Sprintf("  OTHER_RELEASE: %s\n  OTHER_RELEASES: %s\n  OTHER_VOLUME: %s\n", otherRelease, filepath.Dir(otherRelease), otherVolume)
	a := probeApp(t, "usera", env, "")
	s.deploy(a, 0)
	ua, err := user.Lookup("moorage-usera")
	if err != nil {
		t.Fatalf("the server made no user for usera: %v", err)
	}
	if ua.Uid == "0" || ua.Gid == "0" {
		t.Fatalf("moorage-usera is uid %s gid %s", ua.Uid, ua.Gid)
	}
	if ub, err := user.Lookup("moorage-userb"); err != nil || ub.Uid == ua.Uid {
		t.Fatalf("userb has no user of its own: %v %v", ub, err)
	}

	vol := filepath.Join(s.dataDir, "volumes", "usera", "data")
	readProbe := func(release string) map[string]string {
		t.Helper()
		var out []byte
		waitFor(t, 60*time.Second, "the probe service of "+release+" to report", func() error {
			var err error
			out, err = os.ReadFile(filepath.Join(vol, "probe-"+release+".out"))
			return err
		})
		return parseProbe(string(out))
	}
	svc := readProbe("v1")
	checkProbe(t, "service", svc, ua)

	out, errOut, code := s.run("run", "-a", "usera", "--", "sh", "probe.sh")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	task := parseProbe(out)
	checkProbe(t, "one-off", task, ua)
	if task["tmpdir"] == svc["tmpdir"] {
		t.Errorf("the one-off shares the service's temporary directory %s", svc["tmpdir"])
	}
	if _, err := os.Stat(task["tmpdir"]); !os.IsNotExist(err) {
		t.Errorf("the one-off's temporary directory %s is still there: %v", task["tmpdir"], err)
	}

	// The release is as uploaded.
	rel := filepath.Join(s.dataDir, "releases", "usera", "v1")
	want, _ := os.ReadFile(filepath.Join(a, "message.txt"))
	if got, _ := os.ReadFile(filepath.Join(rel, "message.txt")); string(got) != string(want) {
		t.Errorf("the release's message.txt is now %q, want %q", got, want)
	}
	if _, err := os.Lstat(filepath.Join(rel, "probe-was-here")); err == nil {
		t.Error("the app created a file in its release")
	}
	// Root can read what the app could not: the paths were right.
	if _, err := os.ReadFile(filepath.Join(otherVolume, "secret")); err != nil {
		t.Fatal(err)
	}

	// allow_root: the next release's probe runs as root; the old probe's
	// temporary directory goes with it.
	a2 := probeApp(t, "usera", env, "    allow_root: true\n")
	s.deploy(a2, 0)
	root := readProbe("v2")
	if root["uid"] != "0" {
		t.Errorf("with allow_root: true the service runs as uid %s, want 0 (report %v)", root["uid"], root)
	}
	waitFor(t, 30*time.Second, "the old probe's temporary directory to go", func() error {
		if _, err := os.Stat(svc["tmpdir"]); !os.IsNotExist(err) {
			return fmt.Errorf("%s: %v", svc["tmpdir"], err)
		}
		return nil
	})
	if t.Failed() {
		t.Logf("server log:\n%s", s.logs())
	}
}

// An app that ran as root before app users existed (here: allow_root on
// every service, then dropped) gets its user on its next deploy, and what
// it wrote to its volume as root becomes its user's.
func TestProcessAppUsersUpgrade(t *testing.T) {
	parallel(t)
	requireRoot(t)
	s := startServerRT(t, "process")
	asRoot := []string{
		"    replicas: 2\n", "    replicas: 2\n    allow_root: true\n",
		"    command: ./hello worker\n", "    command: ./hello worker\n    allow_root: true\n",
		"    command: ./hello scheduler\n", "    command: ./hello scheduler\n    allow_root: true\n",
	}
	v1 := probeApp(t, "userup", "", "    allow_root: true\n")
	editSpec(t, v1, asRoot...)
	s.deploy(v1, 0)
	vol := filepath.Join(s.dataDir, "volumes", "userup", "data")
	waitFor(t, 60*time.Second, "v1's probe to report", func() error {
		_, err := os.ReadFile(filepath.Join(vol, "probe-v1.out"))
		return err
	})
	if b, _ := os.ReadFile(filepath.Join(vol, "probe-v1.out")); parseProbe(string(b))["uid"] != "0" {
		t.Fatalf("v1 does not run as root: %s", b)
	}
	// What the app wrote as root.
	old := filepath.Join(vol, "old-file")
	if err := os.WriteFile(old, []byte("written as root\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	v2 := probeApp(t, "userup", "", "")
	s.deploy(v2, 0)
	u, err := user.Lookup("moorage-userup")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	waitFor(t, 60*time.Second, "v2's probe to report", func() error {
		b, err := os.ReadFile(filepath.Join(vol, "probe-v2.out"))
		got = parseProbe(string(b))
		return err
	})
	if got["uid"] != u.Uid || got["write-volume"] != "yes" {
		t.Errorf("v2 runs as uid %s (want %s), write-volume=%s", got["uid"], u.Uid, got["write-volume"])
	}
	out, errOut, code := s.run("run", "-a", "userup", "--", "sh", "-c", `echo more >> "$MOORAGE_VOLUME_DATA/old-file" && id -u`)
	if code != 0 || strings.TrimSpace(out) != u.Uid {
		t.Errorf("the app's user cannot append to a file it wrote as root: exit %d, %q %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(old); string(b) != "written as root\nmore\n" {
		t.Errorf("old-file is %q", b)
	}
}
