package e2e

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mediacmsCompose is a compose project shaped like MediaCMS 7.3's
// production setup: a migrations init container the others wait for,
// web (two replicas, health check, published port), celery beat and two
// celery worker queues, Postgres and Redis with named volumes and health
// checks, the custom/ directory bind-mounted into the app, and restart
// policies. PG and REDIS are the local images' tags (no registry).
const mediacmsCompose = `name: mediacms
x-moorage: {monitor: 1s}
x-app: &app
  build: .
  environment: &env
    BROKER_URL: redis://redis:6379/0
    POSTGRES_HOST: db
    PYTHONDONTWRITEBYTECODE: "1"
  volumes:
    - data:/app/data
    - ./custom:/app/custom:ro
  depends_on:
    migrate:
      condition: service_completed_successfully
  restart: always

services:
  migrate:
    build: .
    environment: *env
    command: ["./hello", "migrate"]
    volumes:
      - data:/app/data
      - ./custom:/app/custom:ro
    restart: "no"
    depends_on:
      db: {condition: service_healthy}
      redis: {condition: service_healthy}

  web:
    <<: *app
    command: ["./hello", "web"]
    ports: ["80:8080"]
    deploy: {replicas: 2}
    healthcheck:
      test: ["CMD", "wget", "-qO", "/dev/null", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 10s
      start_period: 2m
      retries: 3
    stop_grace_period: 20s

  celery_beat:
    <<: *app
    command: python3 -m celery -A tasks beat --schedule /tmp/beat-schedule --loglevel info
    x-moorage: {min_ready: 1s}

  celery_short:
    <<: *app
    command: python3 -m celery -A tasks worker -Q short_tasks -c 1 --loglevel info --without-gossip --without-mingle --without-heartbeat
    x-moorage: {min_ready: 1s}

  celery_long:
    <<: *app
    command: python3 -m celery -A tasks worker -Q long_tasks -c 1 --loglevel info --without-gossip --without-mingle --without-heartbeat
    stop_grace_period: 2m
    x-moorage: {min_ready: 1s}

  db:
    image: PG
    user: "70:70"
    command: ["sh", "-c", "test -s /var/lib/postgresql/data/PG_VERSION || initdb -D /var/lib/postgresql/data -U postgres --auth=trust --no-locale -E UTF8; exec postgres -D /var/lib/postgresql/data -k /tmp -c listen_addresses='*'"]
    environment:
      POSTGRES_USER: postgres
      POSTGRES_DB: postgres
    volumes:
      - postgres_data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 1s
      timeout: 5s
      retries: 5
    restart: always

  redis:
    image: REDIS
    user: "999:999"
    command: ["redis-server", "--dir", "/data", "--appendonly", "yes", "--protected-mode", "no"]
    volumes:
      - redis_data:/data
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
    restart: always

volumes:
  data:
  postgres_data:
  redis_data:
`

// mediacmsHTTPS is the HTTPS overlay, shaped like MediaCMS's
// letsencrypt file: nginx-proxy and its ACME companion (which moorage's
// proxy replaces), and web's host with moorage's internal CA (no public
// ACME here).
const mediacmsHTTPS = `services:
  nginx-proxy:
    image: nginxproxy/nginx-proxy
    ports: ["80:80", "443:443"]
    volumes:
      - /var/run/docker.sock:/tmp/docker.sock:ro
  acme-companion:
    image: nginxproxy/acme-companion
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
  web:
    x-moorage:
      http: {hosts: [media.internal], tls: internal}
`

// mediacmsTasks is the Celery code: beat sends a tick to each queue every
// second; the workers record which release ran it. A beat records its
// start, refreshes a 400 ms heartbeat key, and records a conflict if it
// starts while another release's beat is alive.
const mediacmsTasks = `import os, threading, time
import redis
from celery import Celery
from celery.signals import worker_ready, beat_init

BROKER = os.environ["BROKER_URL"]
RELEASE = os.environ.get("MOORAGE_RELEASE", "-")
app = Celery("tasks", broker=BROKER)
app.conf.beat_schedule = {
    "tick-short": {"task": "tasks.tick", "schedule": 1.0, "args": ("short", RELEASE), "options": {"queue": "short_tasks"}},
    "tick-long": {"task": "tasks.tick", "schedule": 1.0, "args": ("long", RELEASE), "options": {"queue": "long_tasks"}},
}
rdb = redis.Redis.from_url(BROKER)

@worker_ready.connect
def ready(**kw):
    rdb.rpush("ready", "%s %s" % (os.environ.get("MOORAGE_SERVICE", "-"), RELEASE))

@beat_init.connect
def beat_started(**kw):
    me = "beat:alive:" + RELEASE
    others = [k.decode() for k in rdb.keys("beat:alive:*") if k.decode() != me]
    rdb.rpush("beat:starts", RELEASE)
    if others:
        rdb.rpush("beat:conflicts", "%s started while %s was alive" % (RELEASE, others))
    def heartbeat():
        while True:
            rdb.set(me, "1", px=400)
            time.sleep(0.1)
    threading.Thread(target=heartbeat, daemon=True).start()

@app.task
def tick(queue, beat_release):
    rdb.rpush("ticks", "%s %s %s" % (queue, beat_release, RELEASE))
`

// importImage imports a root filesystem of host files, extra files
// (path → content) and owned directories as tag.
func importImage(t testing.TB, tag string, files map[string]bool, extra map[string]string, dirs map[string]int, changes ...string) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfsExtra(pw, files, extra, dirs)) }()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	cmd := exec.Command("docker", append(args, "-", tag)...)
	cmd.Stdin = pr
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() { docker("rmi", "-f", tag) })
}

// writeRootfsExtra is writeRootfs with files given by content and
// directories owned by a uid (mode 0775).
func writeRootfsExtra(w io.Writer, files map[string]bool, extra map[string]string, owned map[string]int) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	mkdir := func(d string) error {
		var chain []string
		for ; d != "/" && !dirs[d]; d = filepath.Dir(d) {
			chain = append([]string{d}, chain...)
		}
		for _, c := range chain {
			dirs[c] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(c, "/") + "/", Mode: 0o755}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}); err != nil {
		return err
	}
	dirs["/tmp"] = true
	ownedDirs := make([]string, 0, len(owned))
	for d := range owned {
		ownedDirs = append(ownedDirs, d)
	}
	sort.Strings(ownedDirs) // a parent before its children
	for _, d := range ownedDirs {
		uid := owned[d]
		if err := mkdir(filepath.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o775, Uid: uid, Gid: uid}); err != nil {
			return err
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		st, err := os.Stat(p) // follows symlinks
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := mkdir(filepath.Dir(p)); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: int64(st.Mode().Perm()), Size: st.Size()})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	for p, content := range extra {
		if err := mkdir(filepath.Dir(p)); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: 0o644, Size: int64(len(content))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, content); err != nil {
			return err
		}
	}
	return tw.Close()
}

// withLibs adds the shared libraries each ELF file of elves loads.
func withLibs(files map[string]bool, elves []string) {
	for _, e := range elves {
		files[e] = true
		out, _ := exec.Command("ldd", e).Output()
		for _, l := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(l) {
				if strings.HasPrefix(f, "/") {
					files[f] = true
				}
			}
		}
	}
}

// addTree adds the regular files under root, skipping names in skip.
func addTree(files map[string]bool, root string, skip ...string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		for _, s := range skip {
			if d.Name() == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if !d.IsDir() {
			files[p] = true
		}
		return nil
	})
}

// postgresImage imports Debian's PostgreSQL (server, initdb and client
// tools, its share files and the modules initdb loads) as postgres:<tag>,
// run as uid 70 (as the alpine image does), with a shell for the compose
// command. The mapper knows it as a database by its name. As in the
// official image, /var/lib/postgresql/data is the postgres user's: a
// fresh volume mounted there starts as that user's (Docker copies the
// directory's owner into it), under docker-compose too.
func postgresImage(t testing.TB) string {
	t.Helper()
	bin := pgBin(t)
	root := filepath.Dir(bin) // /usr/lib/postgresql/15
	tag := fmt.Sprintf("postgres:moorage-e2e-%d", time.Now().UnixNano())
	files := map[string]bool{}
	var elves []string
	for _, b := range []string{"postgres", "initdb", "pg_dump", "pg_restore", "psql", "pg_isready", "createdb", "dropdb"} {
		elves = append(elves, filepath.Join(bin, b))
	}
	libs, _ := filepath.Glob(filepath.Join(root, "lib", "*.so"))
	for _, l := range libs {
		if filepath.Base(l) != "llvmjit.so" {
			elves = append(elves, l)
		}
	}
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	elves = append(elves, sh)
	withLibs(files, elves)
	files["/bin/sh"] = true
	addTree(files, "/usr/share/postgresql/"+filepath.Base(root))
	addTree(files, "/usr/share/zoneinfo", "right", "posix")
	importImage(t, tag, files,
		map[string]string{
			"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
			"/etc/group":  "root:x:0:\npostgres:x:70:\n",
		},
		map[string]int{"/var/lib/postgresql": 70, "/var/lib/postgresql/data": 70},
		"ENV PATH="+bin+":/usr/bin:/bin", "ENV PGHOST=/tmp")
	return tag
}

// redisImage imports Debian's redis-server and redis-cli as redis:<tag>,
// with /data the redis user's, as in the official image.
func redisImage(t testing.TB) string {
	t.Helper()
	tag := fmt.Sprintf("redis:moorage-e2e-%d", time.Now().UnixNano())
	files := map[string]bool{}
	withLibs(files, []string{"/usr/bin/redis-server", "/usr/bin/redis-cli"})
	importImage(t, tag, files, map[string]string{"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nredis:x:999:999::/data:/bin/false\n"}, map[string]int{"/data": 999},
		"ENV PATH=/usr/bin:/bin")
	return tag
}

// mediacmsProject writes the project: the hello example's code and static
// binary (web, migrate) and the Celery tasks in one image built FROM the
// Celery image, busybox for the health check, custom/, the compose file
// and its HTTPS overlay, and no moorage.yaml.
func mediacmsProject(t testing.TB, s *server) string {
	t.Helper()
	celery := celeryImage(t)
	pg, redis := postgresImage(t), redisImage(t)
	dir := s.hello(t) // with busybox-bin/
	if err := os.Remove(filepath.Join(dir, "moorage.yaml")); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "hello", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	compose := strings.NewReplacer("image: PG", "image: "+pg, "image: REDIS", "image: "+redis).Replace(mediacmsCompose)
	files := map[string]string{
		"Dockerfile":                "FROM " + celery + "\nWORKDIR /app\nCOPY hello message.txt tasks.py /app/\nCOPY busybox-bin/ /bin/\nUSER 65534:65534\n",
		"tasks.py":                  mediacmsTasks,
		"docker-compose.yml":        compose,
		"docker-compose.https.yml":  mediacmsHTTPS,
		"custom/static/motd.txt":    "custom 0\n",
		"custom/templates/base.txt": "MediaCMS custom template\n",
	}
	if s.runtime == "swarm" {
		// The images are the manager's, as a user's `docker load` there;
		// and the app's data volume is shared storage, as a site's
		// overlay gives it to instances on several nodes (NFS in real
		// life; here a directory every node of the test's swarm sees).
		loadOnManager(t, s, celery, pg, redis)
		files["docker-compose.swarm.yml"] = "volumes:\n  data:\n    driver: local\n    driver_opts: {type: none, o: bind, device: " + s.shared + "}\n"
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// httpsClient connects every name to addr, trusting roots, with keep-alive.
func httpsClient(roots *x509.CertPool, addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, ServerName: "media.internal"},
			MaxIdleConnsPerHost: 1,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// startHTTPSLoader sends GETs of url from workers keep-alive clients,
// 5 ms apart, as startLoader does over plain HTTP.
func startHTTPSLoader(roots *x509.CertPool, addr, url string, workers int) *loader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{cancel: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := httpsClient(roots, addr)
			for ctx.Err() == nil {
				r := result{method: http.MethodGet, start: time.Now()}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.status, r.body, r.err = resp.StatusCode, string(b), rerr
				} else {
					r.err = err
				}
				r.end = time.Now()
				if ctx.Err() != nil && r.err != nil {
					return
				}
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond) // TLS costs more CPU than the plain loader: leave some to the deploys
			}
		}()
	}
	return l
}

// container returns the id of the one running container of service svc.
func (s *server) container(t *testing.T, svc string) string {
	t.Helper()
	out, err := docker("ps", "-q", "--filter", "label=moorage.prefix="+s.prefix, "--filter", "label=moorage.service="+svc)
	ids := strings.Fields(out)
	if err != nil || len(ids) == 0 {
		t.Fatalf("no running container of %s: %v %s", svc, err, out)
	}
	return ids[0]
}

// execIn runs args in a running container of service svc of app: on
// docker, the machine's engine's; on swarm, a task's container on
// whichever node runs it (through that node's own engine).
func (s *server) execIn(t *testing.T, app, svc string, args ...string) (string, error) {
	t.Helper()
	if s.runtime != "swarm" {
		return docker(append([]string{"exec", s.container(t, svc)}, args...)...)
	}
	var tried []string
	for _, n := range s.swarm.Nodes {
		host := "unix://" + n.Socket
		out, err := docker("-H", host, "ps", "-q", "--filter", "label=moorage.app="+app, "--filter", "label=moorage.service="+svc)
		tried = append(tried, fmt.Sprintf("%s: %v %s", n.Name, err, out))
		if ids := strings.Fields(out); err == nil && len(ids) > 0 {
			return docker(append([]string{"-H", host, "exec", ids[0]}, args...)...)
		}
	}
	t.Fatalf("no running container of %s on any node:\n%s", svc, strings.Join(tried, "\n"))
	return "", nil
}

// loadOnManager loads images of the machine's engine on the swarm's
// manager, as a user's `docker load` (or build) there would: moorage
// builds on the manager and ships what the nodes need from there.
func loadOnManager(t testing.TB, s *server, images ...string) {
	t.Helper()
	for _, img := range images {
		load := exec.Command("sh", "-c", "docker save \"$1\" | docker -H unix://\"$2\" load -q", "sh", img, s.swarm.Manager().Socket)
		if out, err := load.CombinedOutput(); err != nil {
			t.Fatalf("load %s on the manager: %v\n%s", img, err, out)
		}
	}
}

// A compose project shaped like MediaCMS's, with local images, deploys
// unmodified with its HTTPS overlay, redeploys 10 times under HTTPS load
// with no failed request, migrations once per deploy and celery beat never
// doubled, rolls back, and has its Postgres backed up and restored.
func TestComposeMediaCMSShapeOnDocker(t *testing.T) {
	parallel(t)
	testComposeMediaCMSShape(t, "docker", 10)
}

// The same project, the same checks, on a three-node swarm (`deploy -f
// ... --runtime swarm`), with one more overlay: the app's data volume on
// storage every node shares. 3 redeploys under load, not 10: a swarm
// redeploy of this project takes 52–95 s on the shared machine (10 took
// 15 min 48 s, docs/benchmarks.md), more than CI's budget can give one
// test; MOORAGE_E2E_SWARM_REDEPLOYS=10 runs the 10.
func swarmComposeMediaCMSShape(t *testing.T) {
	redeploys := 3
	if v := os.Getenv("MOORAGE_E2E_SWARM_REDEPLOYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("MOORAGE_E2E_SWARM_REDEPLOYS=%q: want a count of 2 or more", v)
		}
		redeploys = n
	}
	testComposeMediaCMSShape(t, "swarm", redeploys)
}

// testComposeMediaCMSShape is the MediaCMS-shaped project's test on the
// runtime rt (docker or swarm), with that many redeploys under load (2 or
// more: the rollback goes to the one before the last).
func testComposeMediaCMSShape(t *testing.T, rt string, redeploys int) {
	requireCelery(t)
	if rt == "swarm" {
		pgBin(t)
	}
	s := startServerRT(t, rt) // swarm: may wait for a cluster slot
	began := time.Now()
	dir := mediacmsProject(t, s)
	t.Logf("images and project ready in %s", time.Since(began).Round(time.Millisecond))
	base, https := filepath.Join(dir, "docker-compose.yml"), filepath.Join(dir, "docker-compose.https.yml")
	args := []string{"deploy", "-f", base, "-f", https}
	if rt == "swarm" {
		args = append(args, "-f", filepath.Join(dir, "docker-compose.swarm.yml"), "--runtime", "swarm")
	}
	deploy := func() string {
		t.Helper()
		out, errOut, code := s.run(args...)
		if code != 0 {
			t.Fatalf("moorage %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out + errOut
	}
	inside := func(svc string, args ...string) (string, error) {
		t.Helper()
		return s.execIn(t, "mediacms", svc, args...)
	}
	out := deploy()
	for _, want := range []string{
		"migrate → release task: 1 of 1, once per deploy before traffic moves (waited for by celery_beat, celery_long, celery_short, web): ./hello migrate",
		"web → service web: routed by moorage's proxy to port 8080 (the proxy takes over published port 80) for media.internal, 2 replicas, health: the compose healthcheck gates it, files ./custom:/app/custom (read-only, copied with each release)",
		"celery_beat → service celery-beat: 1 replica, singleton (celery beat must never run twice",
		"celery_short → service celery-short: 1 replica",
		"celery_long → service celery-long: 1 replica",
		"db → accessory db: postgres:moorage-e2e-",
		"backup: postgres, health: the compose healthcheck",
		"redis → accessory redis: redis:moorage-e2e-",
		"nginx-proxy → skipped",
		"acme-companion → skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy -f output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("first deploy done at %s", time.Since(began).Round(time.Millisecond))

	rootPEM := s.mustRun("server", "ca")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(rootPEM)) {
		t.Fatalf("moorage server ca printed no PEM:\n%s", rootPEM)
	}
	c := httpsClient(roots, s.https)
	waitHTTPS := func(want string) {
		t.Helper()
		waitFor(t, 60*time.Second, "https://media.internal/ to contain "+want, func() error {
			r, err := c.Get("https://media.internal/")
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || !strings.Contains(string(b), want) {
				return fmt.Errorf("status %d body %q", r.StatusCode, b)
			}
			return nil
		})
	}
	waitHTTPS("release=v1")
	// Plain HTTP redirects to HTTPS.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/x", nil)
	req.Host = "media.internal"
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r, err := noFollow.Do(req); err != nil || r.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(r.Header.Get("Location"), "https://media.internal") {
		t.Errorf("plain HTTP: %v %+v", err, r)
	} else {
		r.Body.Close()
	}

	redisCli := func(args ...string) []string {
		t.Helper()
		out, err := inside("redis", append([]string{"redis-cli", "--raw"}, args...)...)
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.Fields(strings.TrimSpace(out))
	}
	// custom/ is in the release, read-only.
	cat := func(svc string) string {
		t.Helper()
		out, err := inside(svc, "cat", "/app/custom/static/motd.txt")
		if err != nil {
			t.Fatalf("cat custom/ in %s: %v\n%s", svc, err, out)
		}
		return strings.TrimSpace(out)
	}
	if got := cat("web"); got != "custom 0" {
		t.Errorf("web reads custom/static/motd.txt as %q", got)
	}
	if out, err := inside("web", "sh", "-c", "echo x >> /app/custom/static/motd.txt"); err == nil {
		t.Errorf("web could write into custom/: %s", out)
	}

	// A deploy ends once its beat has run for min_ready; Celery's beat
	// initialises (beat_init, which records its start) some seconds later
	// on a busy machine. The next deploy waits for it: a beat replaced
	// before it initialised would never record its start, and the count
	// below would miss a release through no fault of the deploy.
	var slowestBeat time.Duration
	beatStarted := func(rel string) {
		t.Helper()
		since := time.Now()
		waitFor(t, 2*time.Minute, "the beat of "+rel+" to initialise", func() error {
			if starts := redisCli("LRANGE", "beat:starts", "0", "-1"); !contains(starts, rel) {
				return fmt.Errorf("beats started so far: %q", starts)
			}
			return nil
		})
		slowestBeat = max(slowestBeat, time.Since(since))
	}
	beatStarted("v1")
	l := startHTTPSLoader(roots, s.https, "https://media.internal/", 4)
	for i := 1; i <= redeploys; i++ {
		setMessage(t, dir, fmt.Sprintf("mediacms %d", i))
		if err := os.WriteFile(filepath.Join(dir, "custom/static/motd.txt"), []byte(fmt.Sprintf("custom %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		deploy()
		waitHTTPS(fmt.Sprintf("message=mediacms %d", i))
		beatStarted(fmt.Sprintf("v%d", i+1))
	}
	t.Logf("each release's beat initialised within %s of its deploy's end", slowestBeat.Round(time.Millisecond))
	rs := l.stop()
	if f := failures(rs); len(f) > 0 {
		t.Fatalf("%d of %d HTTPS requests failed during %d compose redeploys:\n%s", len(f), len(rs), redeploys, strings.Join(f, "\n"))
	}
	t.Logf("%d HTTPS requests during %d compose redeploys, none failed (at %s)", len(rs), redeploys, time.Since(began).Round(time.Millisecond))
	checkMigrations(t, s, "mediacms", redeploys+1)
	last := fmt.Sprintf("v%d", redeploys+1)
	if got := cat("celery-beat"); got != fmt.Sprintf("custom %d", redeploys) {
		t.Errorf("the last release's beat reads custom/ as %q", got)
	}

	// Both queues ran ticks of the last release's beat in the last
	// release's workers; beat never ran twice.
	checkTicks := func(rel string) error {
		out, err := inside("redis", "redis-cli", "--raw", "LRANGE", "ticks", "0", "-1")
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, q := range []string{"short", "long"} {
			if !contains(lines, q+" "+rel+" "+rel) {
				var recent []string // what the queue ran last, and which workers are up
				for i := len(lines) - 1; i >= 0 && len(recent) < 5; i-- {
					if strings.HasPrefix(lines[i], q+" ") {
						recent = append(recent, lines[i])
					}
				}
				ready, _ := inside("redis", "redis-cli", "--raw", "LRANGE", "ready", "-6", "-1")
				return fmt.Errorf("no %s tick of beat %s run by worker %s yet (its last ticks, newest first: %q; last workers ready: %q)", q, rel, rel, recent, strings.Split(strings.TrimSpace(ready), "\n"))
			}
		}
		return nil
	}
	waitFor(t, 60*time.Second, "both queues to run the last beat's ticks", func() error { return checkTicks(last) })
	if c := redisCli("LRANGE", "beat:conflicts", "0", "-1"); len(c) > 0 {
		t.Fatalf("celery beat ran twice: %q", c)
	}
	starts := redisCli("LRANGE", "beat:starts", "0", "-1")
	if len(starts) != redeploys+1 {
		t.Errorf("beat started %d times, want once per deploy (%d): %q", len(starts), redeploys+1, starts)
	}

	// Rollback brings back the previous release: a new release of its
	// artifact and config, whose beat and workers (MOORAGE_RELEASE is the
	// new release's) tick. Ticks of the previous release itself may be in
	// the list from when it was active, and show nothing of the rollback.
	s.mustRun("rollback", "-a", "mediacms")
	waitHTTPS(fmt.Sprintf("message=mediacms %d", redeploys-1))
	rolled := s.ps("mediacms").Active
	if want := fmt.Sprintf("v%d", redeploys+2); rolled != want {
		t.Fatalf("the rollback's release is %s, want %s", rolled, want)
	}
	waitFor(t, 60*time.Second, "the rolled-back beat's ticks", func() error { return checkTicks(rolled) })
	if c := redisCli("LRANGE", "beat:conflicts", "0", "-1"); len(c) > 0 {
		t.Fatalf("celery beat ran twice: %q", c)
	}
	t.Logf("rolled back at %s", time.Since(began).Round(time.Millisecond))

	// Postgres: a row written before the backup, deleted after, is back
	// after the restore.
	psql := func(sql string) string {
		t.Helper()
		out, err := inside("db", "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql)
		if err != nil {
			t.Fatalf("psql %q: %v\n%s", sql, err, out)
		}
		return strings.TrimSpace(out)
	}
	psql("CREATE TABLE media (id int primary key, title text); INSERT INTO media VALUES (1, 'harbour'), (2, 'mooring')")
	out = s.mustRun("backup", "create", "-a", "mediacms", "--accessory", "db")
	if !strings.Contains(out, "dumped database postgres") {
		t.Fatalf("backup create:\n%s", out)
	}
	var id string
	for _, x := range backupIDs(t, s, "mediacms") {
		if strings.HasPrefix(x, "mediacms-postgres-db-") {
			id = x
		}
	}
	if id == "" {
		t.Fatalf("no postgres backup listed:\n%s", s.mustRun("backup", "list", "-a", "mediacms"))
	}
	psql("DELETE FROM media WHERE id = 2")
	if got := psql("SELECT string_agg(id || ':' || title, ',' ORDER BY id) FROM media"); got != "1:harbour" {
		t.Fatalf("rows before restore: %s", got)
	}
	s.mustRun("backup", "restore", "-a", "mediacms", id)
	if got := psql("SELECT string_agg(id || ':' || title, ',' ORDER BY id) FROM media"); got != "1:harbour,2:mooring" {
		t.Fatalf("rows after restore: %s, want both", got)
	}
	// App deploys never restarted the accessories.
	for _, in := range s.ps("mediacms").Instances {
		if in.Kind == "accessory" && in.Restarts != 0 {
			t.Errorf("accessory restarted: %+v", in)
		}
	}
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
}
