package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/dockersock"
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
// Docker) restarts it, the proxy takes it out of rotation within one health
// interval (at the first request that cannot reach it, at the latest after
// its health check's retries) and routes to its new port once it is back,
// and no GET fails.
func TestDockerKillUnderTraffic(t *testing.T) {
	parallel(t)
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
	killDone := time.Now()
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
	// The proxy's own account: when it took the instance out of rotation,
	// from its log. One health interval (1s in the example's spec) is the
	// promise; the slack covers a loaded machine without hiding a proxy
	// that never takes the instance out (no such line at all) or waits for
	// the restart.
	const interval, slack = time.Second, 10 * time.Second
	outAt, ok := s.proxyMarkedDown("hello-web-v1-1", killed)
	switch {
	case !ok:
		t.Errorf("the proxy never took hello-web-v1-1 out of rotation after the kill; server log:\n%s", tail(s.logs(), 40))
	case outAt.Sub(killDone) > interval+slack:
		t.Errorf("the proxy took hello-web-v1-1 out of rotation %s after the kill, want within one health interval (%s, + %s slack)",
			outAt.Sub(killDone).Round(time.Millisecond), interval, slack)
	}
	t.Logf("%d requests, 0 failed; the proxy took the killed instance out of rotation %s after `docker kill` started (which took %s; ps saw it unhealthy after %s); back in %s",
		len(results), outAt.Sub(killed).Round(time.Millisecond), killDone.Sub(killed).Round(time.Millisecond), outAfter.Round(time.Millisecond), restarted.Sub(killed).Round(time.Millisecond))
	events := s.mustRun("ps", "-a", "hello")
	if !strings.Contains(events, "hello-web-v1-1 crashed") {
		t.Errorf("the crash is not in ps's events:\n%s", events)
	}
}

// Stopping the server leaves every container running; starting it again
// re-adopts them all without restarting any (same container IDs, same
// StartedAt). Then the engine answering late, below.
func TestDockerServerRestartKeepsContainers(t *testing.T) {
	parallel(t)
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
	if t.Failed() {
		return
	}
	testDockerEngineAnswersLate(t, s, app, before)
}

// A server that starts while the Docker Engine does not answer (started
// before Docker, or during an engine restart) keeps trying, and once the
// engine answers brings the docker apps back to their active release with
// no deploy and no server restart: containers that stopped meanwhile (an
// engine restart stops them; only moorage restarts them) run again, and
// the proxy routes to them. TestDockerServerRestartKeepsContainers runs it
// on its server and app, whose containers it found before as before.
func testDockerEngineAnswersLate(t *testing.T, s *server, app string, before map[string]container) {
	s.stop()
	// What an engine restart does to containers with no restart policy.
	names := make([]string, 0, len(before))
	for name := range before {
		names = append(names, name)
	}
	if out, err := docker(append([]string{"stop", "-t", "5"}, names...)...); err != nil {
		t.Fatalf("docker stop: %v %s", err, out)
	}

	// The server starts with no engine at its --docker-host.
	sock := filepath.Join(t.TempDir(), "engine.sock")
	s.args = append(s.args, "--docker-host", "unix://"+sock)
	s.start()
	if !strings.Contains(s.logs(), "docker engine not reachable") {
		t.Fatalf("the server did not say the engine is unreachable:\n%s", tail(s.logs(), 30))
	}
	if code, body, err := s.get("/"); err == nil && code == 200 {
		t.Fatalf("the app answered with its containers stopped: %d %q", code, body)
	}
	// A deploy meanwhile fails at once, saying why, and records nothing.
	deploys := s.mustRun("deploys", "-a", "hello", "--json")
	if out := s.deploy(app, 1); !strings.Contains(out, "start Docker") {
		t.Fatalf("a deploy with no engine: %s", out)
	}
	if after := s.mustRun("deploys", "-a", "hello", "--json"); after != deploys {
		t.Fatalf("a failed deploy with no engine left a record:\n%s\nbefore:\n%s", after, deploys)
	}

	// The engine answers at sock from now on: no deploy, no restart.
	dockersock.Forward(t, sock)
	s.waitBody("/", "release=v1")
	waitFor(t, 60*time.Second, "every instance to run again", func() error {
		st := s.dockerPS("hello")
		if st.Active != "v1" || len(st.Instances) != 4 {
			return fmt.Errorf("ps: %+v", st)
		}
		for _, in := range st.Instances {
			if in.State != "running" {
				return fmt.Errorf("%s is %s", in.ID, in.State)
			}
		}
		cs := s.containers(t)
		if len(cs) != 4 {
			return fmt.Errorf("containers: %+v", cs)
		}
		for name, c := range cs {
			if c.Status != "running" {
				return fmt.Errorf("%s is %s", name, c.Status)
			}
		}
		return nil
	})
	waitFor(t, 60*time.Second, "the recovery to finish", func() error {
		if !strings.Contains(s.logs(), "recovered once its runtime answered") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	// And the app is managed again: a deploy goes through the same engine.
	setMessage(t, app, "after the engine came back")
	s.deploy(app, 0)
	s.waitBody("/", "after the engine came back")
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
	// --no-cache: the binary is the same in every test, so the classic
	// builder would take another test's layer from its cache, and that
	// test's cleanup can remove it mid-build ("unable to find image").
	cmd := exec.Command("docker", "build", "-q", "--no-cache", "--label", "moorage.prefix="+s.prefix, "-t", tag, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	return tag
}

// An accessory with a volume keeps its data, and keeps running, across 5
// app deploys and a server restart; the app reaches it by name.
func TestDockerAccessoryKeepsItsData(t *testing.T) {
	parallel(t)
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

// examples/hello deploys on docker exactly as shipped (its FROM scratch
// Dockerfile, no shell added). The app then stays on docker: a plain
// deploy of the same spec (which says process) keeps it there and says
// so; --runtime process moves it, warning that the data volume does not
// follow, and nothing of it is left on docker.
func TestDockerExampleAsShipped(t *testing.T) {
	parallel(t)
	s := startServerRT(t, "docker")
	app := helloApp(t) // not s.hello: no busybox
	s.deploy(app, 0)   // --runtime docker
	s.waitBody("/", "release=v1")
	if c := s.containers(t)[s.prefix+"-hello-web-v1-1"]; c.Status != "running" {
		t.Fatalf("hello-web-v1-1 container: %+v", c)
	}

	out, errOut, code := s.run("deploy", app)
	if code != 0 {
		t.Fatalf("plain deploy: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "runtime docker, the one v1 runs on (the spec says process; deploy with --runtime process to move the app)") {
		t.Errorf("a plain deploy does not say it keeps the app on docker:\n%s", out)
	}
	s.waitBody("/", "release=v2")
	if c := s.containers(t)[s.prefix+"-hello-web-v2-1"]; c.Status != "running" {
		t.Fatalf("v2 is not on docker: %+v", s.containers(t))
	}

	out, errOut, code = s.run("deploy", app, "--runtime", "process")
	if code != 0 {
		t.Fatalf("deploy --runtime process: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"warning: moving hello from the docker runtime to process",
		"warning: the data of its volumes (data) does not follow: process starts them empty; the docker runtime keeps it (data in ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the move does not say %q:\n%s", want, out)
		}
	}
	body := s.waitBody("/", "release=v3")
	if st := s.ps("hello"); st.Active != "v3" || len(st.Instances) == 0 {
		t.Errorf("after the move: %+v (%s)", st, body)
	}
	waitFor(t, 60*time.Second, "the docker containers of hello to be gone", func() error {
		if cs := s.containers(t); len(cs) > 0 {
			return fmt.Errorf("still there: %v", cs)
		}
		return nil
	})
	if apps := s.mustRun("apps"); !regexp.MustCompile(`hello\s+process\s+v3`).MatchString(apps) {
		t.Errorf("moorage apps after the move:\n%s", apps)
	}
}

// Docker specifics through real deploys, in few of them: web gated on the
// image's HEALTHCHECK (no health: in the spec), user/read_only/memory/cpus
// reaching the containers, an app with accessories refused a runtime
// move, an accessory restarted when its spec changes and by `moorage
// accessory restart`, images beyond keep_releases pruned after a deploy, a
// deploy whose HEALTHCHECK fails leaving the active release serving,
// `moorage prune` removing its image, and an `image:` deploy of an image
// built here (nothing is pulled).
func TestDockerDeployFeatures(t *testing.T) {
	parallel(t)
	s := startServerRT(t, "docker")
	store := buildStoreImage(t, s)
	app := s.hello(t, append(fastSpec,
		"    health: {path: /healthz, interval: 1s}\n", "    user: \"65534:65534\"\n    read_only: true\n    memory: 64M\n    cpus: 0.5\n",
		"monitor: 1s", "monitor: 1s\n  keep_releases: 2",
		"volumes:\n  data:", "accessories:\n  store:\n    image: "+store+"\n    command: /store\n    port: 8080\n    env: {NOTE: one}\n    volumes: [\"storedata:/store-data\"]\nvolumes:\n  data:")...)
	healthcheck := func(cmd string) {
		t.Helper()
		df := filepath.Join(app, "Dockerfile")
		b, err := os.ReadFile(df)
		if err != nil {
			t.Fatal(err)
		}
		d, _, _ := strings.Cut(string(b), "HEALTHCHECK")
		if err := os.WriteFile(df, []byte(d+"HEALTHCHECK "+cmd+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The HEALTHCHECK runs in every container of the image, the worker's
	// too: it checks HTTP in web's only. Its start period is long: on a
	// loaded machine (CI runs every package at once) one probe, a process
	// that Docker execs in the container, took longer than its 2s timeout
	// four times in a row, and the failures of the start period do not
	// count.
	const goodCheck = `--interval=1s --timeout=2s --retries=3 --start-period=60s CMD ["/bin/sh", "-c", "[ \"$MOORAGE_SERVICE\" != web ] || wget -qO /dev/null http://127.0.0.1:8080/healthz"]`
	healthcheck(goodCheck)

	out := s.deploy(app, 0)
	// 60s start period + (1s interval + 2s timeout) × (3 retries + 1) + 10s.
	for _, want := range []string{"web: ready when the image's HEALTHCHECK passes (within 1m22s)", "worker: ready when the image's HEALTHCHECK passes (within 1m22s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy 1 does not say %q:\n%s", want, out)
		}
	}
	s.waitBody("/", "release=v1")
	web := s.prefix + "-hello-web-v1-1"
	if got, err := docker("inspect", "-f", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.State.Health.Status}}", web); err != nil || got != "65534:65534 true 67108864 500000000 healthy" {
		t.Errorf("%s: %q %v, want the spec's user, read-only root, 64M, 0.5 CPU, and healthy", web, got, err)
	}

	// The accessory cannot follow a move to the process runtime.
	out, errOut, code := s.run("deploy", app, "--runtime", "process")
	if code == 0 || !strings.Contains(out+errOut, "cannot move the app to another runtime: hello runs on docker with accessories (store)") {
		t.Errorf("moving an app with accessories: exit %d\n%s%s", code, out, errOut)
	}

	// A change of the accessory's spec restarts it.
	acc := s.prefix + "-hello-store"
	accBefore := s.containers(t)[acc]
	editSpec(t, app, "NOTE: one", "NOTE: two")
	out = s.deploy(app, 0)
	if !strings.Contains(out, "restarting store: its spec changed") {
		t.Errorf("deploy 2 does not say it restarts the accessory:\n%s", out)
	}
	accAfter := s.containers(t)[acc]
	if accAfter.ID == accBefore.ID || accAfter.Status != "running" {
		t.Errorf("the accessory was not restarted on its spec change: %+v → %+v", accBefore, accAfter)
	}
	out = s.mustRun("accessory", "restart", "store", "-a", "hello")
	if restarted := s.containers(t)[acc]; restarted.StartedAt == accAfter.StartedAt || restarted.Status != "running" {
		t.Errorf("moorage accessory restart did not restart it: %+v → %+v\n%s", accAfter, restarted, out)
	}

	// A HEALTHCHECK that fails: Docker says unhealthy, the deploy fails,
	// v2 keeps serving; `moorage prune` removes the failed release's image.
	healthcheck(`--interval=1s --timeout=2s --retries=2 CMD ["/bin/false"]`)
	out = s.deploy(app, 1)
	if !strings.Contains(out, "HEALTHCHECK") {
		t.Errorf("the failed deploy does not blame the HEALTHCHECK:\n%s", out)
	}
	s.waitBody("/", "release=v2")
	if dry := s.mustRun("prune", "-a", "hello", "--dry-run"); !regexp.MustCompile(`would remove v3: sha256:\w+ \(\d`).MatchString(dry) {
		t.Errorf("prune --dry-run:\n%s", dry)
	}
	if pruned := s.mustRun("prune", "-a", "hello"); !strings.Contains(pruned, "removed v3: sha256:") {
		t.Errorf("prune:\n%s", pruned)
	}
	if _, err := docker("image", "inspect", s.prefix+"-hello:v3"); err == nil {
		t.Errorf("v3's image is still there after moorage prune")
	}

	// image: a prebuilt image that is on the engine (built here, as
	// nothing can be pulled) is deployed as it is.
	healthcheck(goodCheck)
	prebuilt := s.prefix + "-prebuilt:1"
	build := exec.Command("go", "build", "-o", "hello", ".")
	build.Dir = app
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	setMessage(t, app, "prebuilt")
	cmd := exec.Command("docker", "build", "-q", "--no-cache", "-t", prebuilt, app)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, b)
	}
	t.Cleanup(func() { docker("rmi", "-f", prebuilt) })
	editSpec(t, app, "build:\n  command: env CGO_ENABLED=0 go build -o hello .\n", "image: "+prebuilt+"\n")
	out = s.deploy(app, 0)
	// v4 active, v2 kept for a rollback (keep_releases: 2): v1's image goes.
	for _, want := range []string{"using image " + prebuilt, "pruned v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("image: deploy does not say %q:\n%s", want, out)
		}
	}
	if _, err := docker("image", "inspect", s.prefix+"-hello:v1"); err == nil {
		t.Errorf("v1's image is still there beyond keep_releases: 2")
	}
	if _, err := docker("image", "inspect", s.prefix+"-hello:v2"); err != nil {
		t.Errorf("v2's image, a rollback target, was pruned: %v", err)
	}
	s.waitBody("/", "release=v4")
	s.waitBody("/", "prebuilt")
}
