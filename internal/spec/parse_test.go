package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helloSpec = `app: hello
runtime: process
build:
  command: env CGO_ENABLED=0 go build -o hello .
release:
  - ./hello migrate
services:
  web:
    command: ./hello web
    replicas: 2
    health: {path: /healthz, interval: 1s}
  worker:
    command: ./hello worker
  scheduler:
    command: ./hello scheduler
    singleton: true
volumes:
  data: {mount: /app/data}
deploy:
  monitor: 5s
`

const designSpec = `app: antisocial
runtime: docker                   # docker | process
build:
  dockerfile: Dockerfile
  target: web
  command: make assets
env:
  DJANGO_SETTINGS_MODULE: antisocial.settings
secrets: [SECRET_KEY, DATABASE_URL]
release:
  - manage.py migrate --noinput
checks:
  - manage.py check --deploy --fail-level WARNING
services:
  web:
    command: gunicorn antisocial.wsgi -b 0.0.0.0:$PORT
    replicas: 2
    health: {path: /healthz, interval: 1s, timeout: 2s, start_period: 30s}
    http: {hosts: [example.com, www.example.com], tls: auto, canonical: example.com, max_body: 40M}
  worker-short: {command: celery -A antisocial worker -Q short, replicas: 3}
  worker-long:  {command: celery -A antisocial worker -Q long, stop_timeout: 10m}
  beat:         {command: celery -A antisocial beat, singleton: true}
accessories:
  db:    {image: postgres:16, port: 5432, volumes: [pgdata:/var/lib/postgresql/data], backup: postgres}
  redis: {image: redis:7, port: 6379}
volumes:
  media: {mount: /app/media, services: [web, worker-long]}
backups: {schedule: "0 3 * * *"}
`

var sigterm = Signal(syscall.SIGTERM)

// defaultDeploy is Deploy with every default.
var defaultDeploy = Deploy{Monitor: DefaultMonitor, DrainTimeout: DefaultDrainTimeout, ReleaseTimeout: DefaultReleaseTimeout, KeepReleases: DefaultKeepReleases, KeepWarm: DefaultKeepWarm}

var defaultLogs = Logs{MaxAge: DefaultLogMaxAge, MaxSize: DefaultLogMaxSize}

// svc returns a service with every default applied.
func svc(name string, cmd ...string) *Service {
	return &Service{Name: name, Command: cmd, Replicas: 1, MinReady: DefaultMinReady, StopSignal: sigterm, StopTimeout: DefaultStopTimeout}
}

func defaultHealthOf(h Health) *Health {
	h.Interval, h.Timeout, h.StartPeriod, h.Retries = DefaultHealthInterval, DefaultHealthTimeout, DefaultStartPeriod, DefaultHealthRetries
	return &h
}

func defaultHTTP() *HTTP {
	return &HTTP{Path: "/", TLS: TLS{Mode: TLSOff}, HoldTimeout: DefaultHoldTimeout}
}

func TestParseHello(t *testing.T) {
	web := svc("web", "./hello", "web")
	web.Replicas = 2
	web.HTTP = defaultHTTP()
	web.Health = defaultHealthOf(Health{Path: "/healthz"})
	sched := svc("scheduler", "./hello", "scheduler")
	sched.Singleton = true
	dep := defaultDeploy
	dep.Monitor = 5 * time.Second
	want := &Spec{
		File:    "moorage.yaml",
		App:     "hello",
		Runtime: RuntimeProcess,
		Build:   &Build{Command: Command{"env", "CGO_ENABLED=0", "go", "build", "-o", "hello", "."}, Workdir: "/app"},
		Release: []Task{{Command: Command{"./hello", "migrate"}, Timeout: DefaultReleaseTimeout, Line: 6}},
		Deploy:  dep,
		Services: map[string]*Service{
			"web":       web,
			"worker":    svc("worker", "./hello", "worker"),
			"scheduler": sched,
		},
		Volumes: map[string]*Volume{"data": {Name: "data", Mount: "/app/data"}},
		Logs:    defaultLogs,
	}
	got := mustParse(t, helloSpec)
	assertSpec(t, got, want)
	if w := got.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	if got := got.ServiceNames(); !reflect.DeepEqual(got, []string{"web", "scheduler", "worker"}) {
		t.Errorf("ServiceNames = %q", got)
	}
}

func TestParseDesignExample(t *testing.T) {
	web := svc("web", "gunicorn", "antisocial.wsgi", "-b", "0.0.0.0:$PORT")
	web.Replicas = 2
	web.Port = DefaultDockerPort
	web.Health = defaultHealthOf(Health{Path: "/healthz"})
	web.HTTP = &HTTP{Hosts: []string{"example.com", "www.example.com"}, Path: "/", TLS: TLS{Mode: TLSAuto},
		Canonical: "example.com", MaxBody: 40 << 20, HoldTimeout: DefaultHoldTimeout}
	short := svc("worker-short", "celery", "-A", "antisocial", "worker", "-Q", "short")
	short.Replicas = 3
	long := svc("worker-long", "celery", "-A", "antisocial", "worker", "-Q", "long")
	long.StopTimeout = 10 * time.Minute
	beat := svc("beat", "celery", "-A", "antisocial", "beat")
	beat.Singleton = true
	acc := func(name, image string, port int) *Accessory {
		return &Accessory{Name: name, Image: image, Port: port, StopSignal: sigterm, StopTimeout: DefaultStopTimeout}
	}
	db := acc("db", "postgres:16", 5432)
	db.Volumes = []VolumeMount{{Name: "pgdata", Path: "/var/lib/postgresql/data"}}
	db.Backup = "postgres"
	want := &Spec{
		File:    "moorage.yaml",
		App:     "antisocial",
		Runtime: RuntimeDocker,
		Build:   &Build{Command: Command{"make", "assets"}, Dockerfile: "Dockerfile", Target: "web", Workdir: "/app"},
		Env:     map[string]string{"DJANGO_SETTINGS_MODULE": "antisocial.settings"},
		Secrets: []string{"SECRET_KEY", "DATABASE_URL"},
		Release: []Task{{Command: Command{"manage.py", "migrate", "--noinput"}, Timeout: DefaultReleaseTimeout, Line: 11}},
		Checks:  []Task{{Command: Command{"manage.py", "check", "--deploy", "--fail-level", "WARNING"}, Timeout: DefaultReleaseTimeout, Line: 13}},
		Deploy:  defaultDeploy,
		Services: map[string]*Service{
			"web": web, "worker-short": short, "worker-long": long, "beat": beat,
		},
		Accessories: map[string]*Accessory{"db": db, "redis": acc("redis", "redis:7", 6379)},
		Volumes:     map[string]*Volume{"media": {Name: "media", Mount: "/app/media", Services: []string{"web", "worker-long"}}},
		Backups:     &Backups{Schedule: "0 3 * * *", Keep: DefaultBackupKeep},
		Logs:        defaultLogs,
	}
	got := mustParse(t, designSpec)
	assertSpec(t, got, want)
	if w := got.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	if got := got.AccessoryNames(); !reflect.DeepEqual(got, []string{"db", "redis"}) {
		t.Errorf("AccessoryNames = %q", got)
	}
	if vs := got.VolumesFor("worker-short"); len(vs) != 0 {
		t.Errorf("VolumesFor(worker-short) = %v", vs)
	}
	if vs := got.VolumesFor("web"); len(vs) != 1 || vs[0].Name != "media" {
		t.Errorf("VolumesFor(web) = %v", vs)
	}
}

// TestParseDefaults checks one default (or normalization) per case.
func TestParseDefaults(t *testing.T) {
	const base = "app: a\nservices:\n  web: {command: ./run}\n"
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *Spec)
	}{
		{"runtime process by default", base, func(t *testing.T, s *Spec) {
			eq(t, s.Runtime, RuntimeProcess)
			eq(t, *s.Build, Build{Workdir: "/app"})
		}},
		{"runtime docker from image", "app: a\nimage: nginx:1\nservices:\n  web: {}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Runtime, RuntimeDocker)
			eq(t, s.Build, (*Build)(nil))
			eq(t, s.Services["web"].Port, DefaultDockerPort)
			eq(t, len(s.Services["web"].Command), 0)
		}},
		{"runtime docker from dockerfile", "app: a\nbuild: {dockerfile: web.Dockerfile}\nservices:\n  web: {}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Runtime, RuntimeDocker)
			eq(t, s.Build.Dockerfile, "web.Dockerfile")
		}},
		{"docker build defaults", "app: a\nruntime: docker\nservices:\n  web: {port: 3000}\n", func(t *testing.T, s *Spec) {
			eq(t, *s.Build, Build{Dockerfile: "Dockerfile", Workdir: "/app"})
			eq(t, s.Services["web"].Port, 3000)
		}},
		{"workdir cleaned", "app: a\nbuild: {workdir: /srv/app/}\nservices:\n  web: {command: ./run}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Build.Workdir, "/srv/app")
		}},
		{"web is routed with a tcp check", base, func(t *testing.T, s *Spec) {
			eq(t, s.Services["web"].HTTP, defaultHTTP())
			eq(t, s.Services["web"].Health, defaultHealthOf(Health{TCP: true, Implied: true}))
			eq(t, s.Services["web"].Port, 0) // process runtime: picked at start
		}},
		{"other services are not routed", "app: a\nservices:\n  api: {command: ./run}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["api"].HTTP, (*HTTP)(nil))
			eq(t, s.Services["api"].Health, (*Health)(nil))
		}},
		{"empty http routes", "app: a\nservices:\n  api:\n    command: ./run\n    http:\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["api"].HTTP, defaultHTTP())
		}},
		{"singleton", "app: a\nservices:\n  beat: {command: ./run, singleton: true}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["beat"].Replicas, 1)
		}},
		{"singleton scaled to zero", "app: a\nservices:\n  beat: {command: ./run, singleton: true, replicas: 0}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["beat"].Replicas, 0)
		}},
		{"task timeout from deploy", "app: a\ndeploy: {release_timeout: 1h}\nrelease:\n  - ./a\n  - {command: [./b, x y], timeout: 5m}\n  - [./c]\nservices:\n  web: {command: ./run}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Release, []Task{
				{Command: Command{"./a"}, Timeout: time.Hour, Line: 4},
				{Command: Command{"./b", "x y"}, Timeout: 5 * time.Minute, Line: 5},
				{Command: Command{"./c"}, Timeout: time.Hour, Line: 6},
			})
		}},
		{"env values kept as written", "app: a\nenv: {A: 8080, B: true, C: 1.50, D: '', E: , F: 0x1F, G: null}\nservices:\n  web: {command: ./run}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Env, map[string]string{"A": "8080", "B": "true", "C": "1.50", "D": "", "E": "", "F": "0x1F", "G": "null"})
		}},
		{"empty collections are nil", "app: a\nenv: {}\nsecrets: []\nrelease: []\naccessories: {}\nvolumes: {}\nservices:\n  web: {command: ./run, env: {}, http: {hosts: [], static: {}}}\n", func(t *testing.T, s *Spec) {
			if s.Env != nil || s.Secrets != nil || s.Release != nil || s.Accessories != nil || s.Volumes != nil ||
				s.Services["web"].Env != nil || s.Services["web"].HTTP.Hosts != nil || s.Services["web"].HTTP.Static != nil {
				t.Errorf("empty collections not nil: %+v", s)
			}
		}},
		{"health defaults", "app: a\nservices:\n  worker:\n    command: ./run\n    health: {command: ./check, retries: 5}\n", func(t *testing.T, s *Spec) {
			h := defaultHealthOf(Health{Command: Command{"./check"}})
			h.Retries = 5
			eq(t, s.Services["worker"].Health, h)
		}},
		{"tls files", "app: a\nservices:\n  web:\n    command: ./run\n    http: {hosts: [a.test], tls: {cert: /c.pem, key: /k.pem}}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["web"].HTTP.TLS, TLS{Mode: TLSFiles, Cert: "/c.pem", Key: "/k.pem"})
		}},
		{"stop signal and sizes", "app: a\nservices:\n  web: {command: ./run, stop_signal: QUIT}\naccessories:\n  r: {command: redis-server, port: 6379, stop_signal: 2, memory: 1.5G, cpus: 0.5}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["web"].StopSignal, Signal(syscall.SIGQUIT))
			eq(t, s.Accessories["r"].StopSignal, Signal(syscall.SIGINT))
			eq(t, s.Accessories["r"].Memory, int64(1536<<20))
			eq(t, s.Accessories["r"].CPUs, 0.5)
			eq(t, s.Services["web"].StopGroup, false)
		}},
		{"stop group", "app: a\nservices:\n  web: {command: ./run, stop_group: true}\naccessories:\n  r: {command: redis-server, port: 6379, stop_group: true}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["web"].StopGroup, true)
			eq(t, s.Accessories["r"].StopGroup, true)
		}},
		{"accessory mounts", "app: a\nruntime: docker\nservices:\n  web: {}\naccessories:\n  db: {image: pg, port: 5432, volumes: ['pg:/var/lib/pg/', '/srv/x:/x', './conf/:/etc/conf']}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Accessories["db"].Volumes, []VolumeMount{{"pg", "/var/lib/pg"}, {"/srv/x", "/x"}, {"./conf", "/etc/conf"}})
		}},
		{"zero monitor", "app: a\ndeploy: {monitor: 0}\nservices:\n  web: {command: ./run}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Deploy.Monitor, time.Duration(0))
		}},
		{"anchors, aliases and merge keys", `app: a
x-common: &common
  command: ./run
  env: &env {A: "1"}
services:
  web:
    <<: *common
    replicas: 3
  worker:
    <<: [*common]
    command: ./work
    env: *env
`, func(t *testing.T, s *Spec) {
			eq(t, s.Services["web"].Command, Command{"./run"})
			eq(t, s.Services["web"].Replicas, 3)
			eq(t, s.Services["web"].Env, map[string]string{"A": "1"})
			eq(t, s.Services["worker"].Command, Command{"./work"})
			eq(t, s.Services["worker"].Env, map[string]string{"A": "1"})
		}},
		{"document markers and empty documents", "---\napp: a\nservices:\n  web: {command: ./run}\n...\n---\n", func(t *testing.T, s *Spec) {
			eq(t, s.App, "a")
		}},
		{"hosts", "app: a\nruntime: docker\nservices:\n  web:\n    http: {hosts: [example.com, '*.example.com', 10.0.0.1, '::1', localhost], tls: internal}\n", func(t *testing.T, s *Spec) {
			eq(t, s.Services["web"].HTTP.Hosts, []string{"example.com", "*.example.com", "10.0.0.1", "::1", "localhost"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.yaml)
			tt.check(t, s)
		})
	}
}

func TestWarnings(t *testing.T) {
	s := mustParse(t, `app: a
runtime: process
build: {dockerfile: Dockerfile}
services:
  web: {command: ./run, port: 80, memory: 64M, user: app}
accessories:
  redis: {image: redis:7, command: redis-server, port: 6379}
backups: {schedule: "@daily"}
`)
	want := []string{
		"build.dockerfile: ignored by the process runtime",
		"services.web.port: ignored by the process runtime: it picks a free port and passes it as $PORT",
		"services.web.memory: ignored by the process runtime",
		"accessories.redis.image: ignored by the process runtime: it runs command:",
		"backups: the app has no volume and no accessory with backup: postgres, so there is nothing to back up",
	}
	eq(t, s.Warnings(), want)

	s = mustParse(t, `app: a
runtime: docker
services:
  web: {}
accessories:
  db: {image: postgres:16, port: 5432, volumes: ["./initdb:/docker-entrypoint-initdb.d", "/srv/pg:/var/lib/postgresql/data", "pgdata:/x"]}
`)
	eq(t, s.Warnings(), []string{
		`accessories.db.volumes[0]: ./initdb is mounted read-only, from a copy of the upload kept with each release (config files); what the accessory writes belongs in a named volume, e.g. "db-data:/docker-entrypoint-initdb.d"`,
		"accessories.db.volumes[1]: host path /srv/pg is bind-mounted as it is: moorage does not manage its data (no volume backups, no ownership for the accessory's user); a named volume does",
	})
}

func TestErrorForms(t *testing.T) {
	_, err := Parse("moorage.yaml", []byte("app: a\nservices:\n  web:\n    command: ./run\n    replicas: two\n"))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	const want = `moorage.yaml:5:15: services.web.replicas: must be a whole number ≥ 0 (got "two")`
	if err.Error() != want {
		t.Fatalf("got  %s\nwant %s", err, want)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 5 || list[0].Column != 15 || list[0].Path != "services.web.replicas" {
		t.Fatalf("errors.As(ErrorList) = %v", list)
	}
	var one *Error
	if !errors.As(err, &one) {
		t.Fatal("errors.As(*Error) failed")
	}

	_, err = Parse("moorage.yaml", []byte("app: A\nservices:\n  web:\n    replicas: -1\n"))
	list = nil
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &one) || one != list[0] {
		t.Fatalf("ErrorList does not unwrap: %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "moorage.yaml:1:6: app: ") ||
		!strings.HasPrefix(lines[1], "moorage.yaml:3:3: services.web.command: is required") ||
		!strings.HasPrefix(lines[2], "moorage.yaml:4:15: services.web.replicas: must be a whole number from 0 to 1000 (got -1)") {
		t.Fatalf("unexpected errors:\n%s", err)
	}
	if e := (&Error{Path: "app", Msg: "x"}); e.Error() != "app: x" {
		t.Errorf("no position: %q", e.Error())
	}
	if e := (&Error{File: "f", Line: 3, Msg: "x"}); e.Error() != "f:3: x" {
		t.Errorf("no column: %q", e.Error())
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "moorage.yaml")
	if err := os.WriteFile(p, []byte(helloSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ParseFile(p)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, s.File, p)
	if err := os.WriteFile(p, []byte("app: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(p); err == nil || !strings.HasPrefix(err.Error(), p+":") {
		t.Errorf("error does not name the file: %v", err)
	}
	missing := filepath.Join(dir, "nope.yaml")
	_, err = ParseFile(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("big file: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, src := range []string{helloSpec, designSpec, `app: a
runtime: docker
image: ghcr.io/a/b:1
env: {X: "1"}
services:
  web:
    http: {hosts: [a.test, '*.a.test'], tls: {cert: /c, key: /k}, canonical: a.test, hsts: true, static: {/media/: media}, drain_timeout: 1m}
    stop_signal: SIGUSR2
    memory: 1G
    cpus: 0.25
    user: "0"
    allow_root: true
    read_only: true
  ticker: {singleton: true, replicas: 0, health: {command: [true], start_period: 0s}, min_ready: 0s}
accessories:
  db: {image: pg, port: 5432, health: {tcp: true}, env: {POSTGRES_PASSWORD: x}, stop_signal: INT, memory: 100M}
volumes:
  media: {mount: /app/media}
`} {
		s := mustParse(t, src)
		assertRoundTrip(t, s)
		if err := s.Validate(); err != nil {
			t.Errorf("Validate of a parsed spec: %v", err)
		}
	}
}

func TestSignalJSON(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Signal
	}{{`"SIGTERM"`, sigterm}, {`"term"`, sigterm}, {`15`, sigterm}, {`"15"`, sigterm}, {`""`, 0}, {`null`, 0}} {
		var s Signal
		if err := json.Unmarshal([]byte(tt.in), &s); err != nil || s != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v", tt.in, s, err)
		}
	}
	for _, bad := range []string{`"SIGNOPE"`, `-1`, `1.5`, `{}`, `"99"`} {
		var s Signal
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want error", bad, s)
		}
	}
	b, _ := json.Marshal(Signal(syscall.SIGQUIT))
	eq(t, string(b), `"SIGQUIT"`)
}

func TestValidate(t *testing.T) {
	s := mustParse(t, helloSpec)
	s.Services["scheduler"].Replicas = 2
	s.Services["web"].HTTP.TLS.Mode = "sometimes"
	s.Deploy.KeepReleases = 1
	s.Services["ghost"] = nil
	err := s.Validate()
	var list ErrorList
	if !errors.As(err, &list) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	want := []string{
		"moorage.yaml: deploy.keep_releases: must be a whole number ≥ 2",
		"moorage.yaml: services.ghost: is empty",
		"moorage.yaml: services.scheduler.replicas: must be 0 or 1 for a singleton (got 2)",
		`moorage.yaml: services.web.http.tls: must be off, auto, internal or {cert: FILE, key: FILE} (got "sometimes")`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, list[i], w)
		}
	}
	var empty Spec
	if err := empty.Validate(); err == nil {
		t.Error("Validate of an empty spec passed")
	}
}

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse("moorage.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return s
}

func assertSpec(t *testing.T, got, want *Spec) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("spec mismatch\ngot:\n%s\nwant:\n%s", g, w)
	}
}

func assertRoundTrip(t testing.TB, s *Spec) {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(s, &back) {
		b2, _ := json.Marshal(&back)
		t.Fatalf("JSON round trip changed the spec:\nbefore: %s\nafter:  %s", b, b2)
	}
}

func eq[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestParseForRuntimeOverride(t *testing.T) {
	src := "app: hello\nruntime: process\nbuild:\n  command: go build -o hello .\nservices:\n  web:\n    command: ./hello web\n"
	sp, err := ParseFor("moorage.yaml", []byte(src), RuntimeDocker)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Runtime != RuntimeDocker || sp.Build.Dockerfile != "Dockerfile" || sp.Services["web"].Port != DefaultDockerPort {
		t.Fatalf("docker defaults not applied: runtime %s dockerfile %q port %d", sp.Runtime, sp.Build.Dockerfile, sp.Services["web"].Port)
	}
}

func TestAccessorySecrets(t *testing.T) {
	s, err := Parse("moorage.yaml", []byte(`app: a
secrets: [SECRET_KEY, POSTGRES_PASSWORD]
services:
  web: {command: ./run}
accessories:
  db: {command: postgres, port: 5432, secrets: [POSTGRES_PASSWORD, DB_EXTRA]}
  cache: {command: redis-server, port: 6379}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Accessories["db"].Secrets; !reflect.DeepEqual(got, []string{"POSTGRES_PASSWORD", "DB_EXTRA"}) {
		t.Errorf("db secrets: %q", got)
	}
	if got := s.SecretNames(); !reflect.DeepEqual(got, []string{"DB_EXTRA", "POSTGRES_PASSWORD", "SECRET_KEY"}) {
		t.Errorf("SecretNames: %q", got)
	}
}
