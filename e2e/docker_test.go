package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockerPS is the part of `moorage ps --json` these tests read.
type dockerPS struct {
	Active    string `json:"active"`
	Instances []struct {
		ID        string    `json:"id"`
		Service   string    `json:"service"`
		Kind      string    `json:"kind"`
		State     string    `json:"state"`
		Restarts  int       `json:"restarts"`
		Addr      string    `json:"addr"`
		StartedAt time.Time `json:"started_at"`
		Routed    bool      `json:"routed"`
		Health    string    `json:"health"`
	} `json:"instances"`
}

func (s *server) dockerPS(app string) dockerPS {
	s.t.Helper()
	out := s.mustRun("ps", "-a", app, "--json")
	var st dockerPS
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("ps --json: %v\n%s", err, out)
	}
	return st
}

// container is docker's view of one container.
type container struct {
	Name, ID, Status, StartedAt string
	RestartCount                int
}

// containers returns the server's containers by name (all of its prefix).
func (s *server) containers(t *testing.T) map[string]container {
	t.Helper()
	ids, err := docker("ps", "-aq", "--filter", "label=moorage.prefix="+s.prefix)
	if err != nil {
		t.Fatalf("docker ps: %v %s", err, ids)
	}
	out := map[string]container{}
	if ids == "" {
		return out
	}
	res, err := docker(append([]string{"inspect", "-f", "{{.Name}} {{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}"}, strings.Fields(ids)...)...)
	if err != nil {
		t.Fatalf("docker inspect: %v %s", err, res)
	}
	for _, l := range scanLines(res) {
		var c container
		if _, err := fmt.Sscan(l, &c.Name, &c.ID, &c.Status, &c.StartedAt, &c.RestartCount); err != nil {
			t.Fatalf("docker inspect line %q: %v", l, err)
		}
		c.Name = strings.TrimPrefix(c.Name, "/")
		out[c.Name] = c
	}
	return out
}

// docker kill of a web container under continuous traffic: moorage (not
// Docker) restarts it, the proxy takes it out of rotation at the first
// request that cannot reach it and routes to its new port once it is back,
// and no GET fails.
func TestDockerKillUnderTraffic(t *testing.T) {
	t.Parallel()
	s := startServerRT(t, "docker")
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	name := s.prefix + "-hello-web-v1-1"
	before := s.containers(t)[name]
	if before.Status != "running" {
		t.Fatalf("%s is %q", name, before.Status)
	}

	ld := startLoader(s.http, "/", 2)
	waitFor(t, 30*time.Second, "requests to flow", func() error {
		if ld.count() < 20 {
			return fmt.Errorf("%d requests so far", ld.count())
		}
		return nil
	})
	killed := time.Now()
	if out, err := docker("kill", name); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	var outAfter time.Duration
	var restarted time.Time
	waitFor(t, 60*time.Second, "the killed instance to be restarted and healthy", func() error {
		for _, in := range s.dockerPS("hello").Instances {
			if in.ID != "hello-web-v1-1" {
				continue
			}
			if in.Health == "unhealthy" && outAfter == 0 {
				outAfter = time.Since(killed)
			}
			if in.Restarts != 1 || in.State != "running" || in.Health != "healthy" {
				return fmt.Errorf("%s: state %s, restarts %d, health %q", in.ID, in.State, in.Restarts, in.Health)
			}
			restarted = time.Now()
			return nil
		}
		return fmt.Errorf("hello-web-v1-1 not listed")
	})
	// It serves again, at its new address.
	waitFor(t, 30*time.Second, "the restarted instance to serve", func() error {
		_, body, err := s.get("/")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "instance=hello-web-v1-1") {
			return fmt.Errorf("answered by %q", body)
		}
		return nil
	})
	results := ld.stop()
	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed around the kill; first: %s", len(f), len(results), f[0])
	}
	after := s.containers(t)[name]
	if after.ID != before.ID || after.StartedAt == before.StartedAt || after.RestartCount != 0 {
		t.Errorf("container after the kill %+v, before %+v: want the same container started again by moorage (Docker's RestartCount 0)", after, before)
	}
	if outAfter > 0 {
		t.Logf("%d requests, 0 failed; the proxy had the killed instance out of rotation %s after the kill; back in %s",
			len(results), outAfter.Round(time.Millisecond), restarted.Sub(killed).Round(time.Millisecond))
	} else {
		t.Logf("%d requests, 0 failed; back in %s (never seen unhealthy between two polls)", len(results), restarted.Sub(killed).Round(time.Millisecond))
	}
	events := s.mustRun("ps", "-a", "hello")
	if !strings.Contains(events, "hello-web-v1-1 crashed") {
		t.Errorf("the crash is not in ps's events:\n%s", events)
	}
}

// Stopping the server leaves every container running; starting it again
// re-adopts them all without restarting any (same container IDs, same
// StartedAt).
func TestDockerServerRestartKeepsContainers(t *testing.T) {
	t.Parallel()
	s := startServerRT(t, "docker")
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	before := s.containers(t)
	if len(before) != 4 {
		t.Fatalf("containers before: %+v, want 4 (web×2, worker, scheduler)", before)
	}
	s.stop()
	for name, c := range s.containers(t) {
		if b := before[name]; c.Status != "running" || c != b {
			t.Fatalf("%s changed when the server stopped: %+v → %+v", name, b, c)
		}
	}
	s.start()
	s.waitBody("/", "release=v1")
	after := s.containers(t)
	if len(after) != len(before) {
		t.Fatalf("containers after the restart: %+v\nbefore: %+v", after, before)
	}
	for name, b := range before {
		if a := after[name]; a != b {
			t.Errorf("%s was touched: %+v → %+v", name, b, a)
		}
	}
	for _, in := range s.dockerPS("hello").Instances {
		if in.State != "running" || in.Restarts != 0 {
			t.Errorf("%s after the restart: %s, %d restarts", in.ID, in.State, in.Restarts)
		}
	}
}

// storeProgram is a tiny accessory: it counts its boots in its volume and
// keeps a note there.
const storeProgram = `package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	dir := os.Getenv("MOORAGE_VOLUME_STOREDATA")
	b, _ := os.ReadFile(filepath.Join(dir, "boots"))
	boots, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	boots++
	if err := os.WriteFile(filepath.Join(dir, "boots"), []byte(strconv.Itoa(boots)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(filepath.Join(dir, "note"), []byte(r.URL.Query().Get("v")), 0o644); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "stored")
	})
	http.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		note, _ := os.ReadFile(filepath.Join(dir, "note"))
		fmt.Fprintf(w, "note=%s boots=%d\n", note, boots)
	})
	fmt.Println("store listening on", os.Getenv("PORT"))
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
`

// buildStoreImage builds the accessory's image (FROM scratch, a static Go
// program, USER 65534) straight on the engine, labelled with the server's
// prefix so the cleanup removes it.
func buildStoreImage(t *testing.T, s *server) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"main.go":    storeProgram,
		"go.mod":     "module store\n\ngo 1.22\n",
		"Dockerfile": "FROM scratch\nCOPY store /store\nUSER 65534\nCMD [\"/store\"]\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", "store", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tag := s.prefix + "-store:1"
	cmd := exec.Command("docker", "build", "-q", "--label", "moorage.prefix="+s.prefix, "-t", tag, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	return tag
}

// An accessory with a volume keeps its data, and keeps running, across 5
// app deploys and a server restart; the app reaches it by name.
func TestDockerAccessoryKeepsItsData(t *testing.T) {
	t.Parallel()
	s := startServerRT(t, "docker")
	image := buildStoreImage(t, s)
	app := s.hello(t, append(fastSpec, "volumes:\n  data:",
		"accessories:\n  store:\n    image: "+image+"\n    port: 8080\n    volumes: [\"storedata:/store-data\"]\nvolumes:\n  data:")...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	note := fmt.Sprintf("kept-%d", time.Now().UnixNano())
	get := func(path string) string {
		t.Helper()
		// Through the app's network, by the name the engine gives it.
		out, errOut, code := s.run("run", "-a", "hello", "--", "sh", "-c", "wget -qO- http://$MOORAGE_ACCESSORY_STORE_ADDR"+path)
		if code != 0 {
			t.Fatalf("wget %s from a one-off: exit %d\n%s%s", path, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	if out := get("/put?v=" + note); out != "stored" {
		t.Fatalf("put: %q", out)
	}
	accName := s.prefix + "-hello-store"
	before := s.containers(t)[accName]
	if before.Status != "running" {
		t.Fatalf("accessory container: %+v", before)
	}

	for i := 2; i <= 6; i++ {
		setMessage(t, app, fmt.Sprintf("deploy %d", i))
		s.deploy(app, 0)
		s.waitBody("/", fmt.Sprintf("release=v%d", i))
	}
	s.stop()
	s.start()
	s.waitBody("/", "release=v6")

	if out := get("/get"); out != "note="+note+" boots=1" {
		t.Fatalf("after 5 deploys and a server restart the accessory says %q, want note=%s boots=1", out, note)
	}
	if after := s.containers(t)[accName]; after != before {
		t.Errorf("the accessory container changed: %+v → %+v", before, after)
	}
	if n := strings.TrimSpace(volumeFileNamed(s, "hello", "storedata", "boots")); n != "1" {
		t.Errorf("boots in the volume: %q", n)
	}
}

// volumeFileNamed reads a file of one of app's volumes.
func volumeFileNamed(s *server, app, volume, name string) string {
	b, _ := os.ReadFile(filepath.Join(s.volumePath(app, volume), name))
	return string(b)
}
