package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseErrors checks positions and messages of malformed specs. Each
// want is "line:col path: text" where text must appear in the message;
// the errors must come in that order and there must be no others.
func TestParseErrors(t *testing.T) {
	const svc = "app: a\nservices:\n  web:\n    command: ./run\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"0:0 : is empty; a spec needs at least app: and services:"}},
		{"only comments", "# nothing\n", []string{"0:0 : is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"1:1 : must be a mapping with app: and services: at the top level (got a list)"}},
		{"scalar document", "hello\n", []string{`1:1 : must be a mapping with app: and services: at the top level (got "hello")`}},
		{"syntax error", "app: a\nservices:\n  web: {command: ./run\n", []string{"3:0 : invalid YAML: did not find expected ',' or '}' (in the mapping or list that starts on this line"}},
		{"tab indentation", "app: a\nservices:\n\tweb: {}\n", []string{"3:0 : invalid YAML: found character that cannot start any token (this line contains a tab: YAML indents with spaces only)"}},
		{"two documents", svc + "---\napp: b\n", []string{`5:1 : a second YAML document starts here`}},
		{"missing app and services", "runtime: process\n", []string{
			"1:1 app: is required: the app's name, e.g. app: myapp",
			"1:1 services: at least one service is required"}},
		{"bad app name", "app: My_App\nservices:\n  web: {command: ./run}\n", []string{
			`1:6 app: must be 1 to 63 characters: a lower-case letter, then lower-case letters, digits or '-' (got "My_App")`}},
		{"long app name", "app: a" + strings.Repeat("b", 63) + "\nservices:\n  web: {command: ./run}\n", []string{"1:6 app: must be 1 to 63 characters"}},
		{"unknown top-level key", svc + "servise: {}\n", []string{
			`5:1 servise: unknown key "servise" (did you mean "services"?); valid keys here are: app, runtime, image, build, env, secrets, release, checks, services, accessories, volumes, deploy, backups`}},
		{"unknown service key", svc + "    replica: 2\n", []string{
			`5:5 services.web.replica: unknown key "replica" (did you mean "replicas"?); valid keys in services.web are: command, replicas,`}},
		{"key from compose", svc + "    environment: {A: b}\n", []string{`5:5 services.web.environment: unknown key "environment" (did you mean "env"?)`}},
		{"misplaced image", svc + "    image: nginx\n", []string{`5:5 services.web.image: unknown key "image"; image: is set once at the top level`}},
		{"no suggestion", svc + "    zzzzzz: 1\n", []string{`5:5 services.web.zzzzzz: unknown key "zzzzzz"; valid keys in services.web are:`}},
		{"duplicate key", svc + "    command: ./other\n", []string{`5:5 services.web.command: duplicate key "command" (first set on line 4)`}},
		{"duplicate service", svc + "  web: {command: ./x}\n", []string{`5:3 services.web: duplicate key "web" (first set on line 3)`}},
		{"replicas not a number", svc + "    replicas: two\n", []string{`5:15 services.web.replicas: must be a whole number ≥ 0 (got "two")`}},
		{"replicas negative", svc + "    replicas: -2\n", []string{`5:15 services.web.replicas: must be a whole number from 0 to 1000 (got -2)`}},
		{"replicas huge", svc + "    replicas: 99999999999999999999999\n", []string{`5:15 services.web.replicas: must be a whole number ≥ 0 (got "99999999999999999999999", which is too large)`}},
		{"replicas a mapping", svc + "    replicas: {n: 2}\n", []string{`5:15 services.web.replicas: must be a whole number ≥ 0, e.g. replicas: 2 (got a mapping)`}},
		{"replicas empty", svc + "    replicas:\n", []string{`5:14 services.web.replicas: needs a value: a whole number ≥ 0, e.g. replicas: 2`}},
		{"singleton scaled", svc + "    singleton: true\n    replicas: 2\n", []string{`6:15 services.web.replicas: must be 0 or 1 for a singleton (got 2)`}},
		{"bool", svc + "    singleton: yes\n", []string{`5:16 services.web.singleton: must be true or false (got "yes")`}},
		{"service a list", "app: a\nservices:\n  web: [a]\n", []string{`3:8 services.web: must be a mapping, e.g. web: {command: ./server --port $PORT} (got a list)`}},
		{"services a list", "app: a\nservices: [web]\n", []string{`2:11 services: must be a mapping, e.g. services: {web: {command: ./server}} (got a list)`}},
		{"bad service name", "app: a\nservices:\n  Web_1: {command: ./run}\n", []string{`3:3 services.Web_1: must be 1 to 63 characters: a lower-case letter, then lower-case letters, digits or '-' (got "Web_1")`}},
		{"process needs command", "app: a\nservices:\n  web: {replicas: 2}\n", []string{`3:3 services.web.command: is required on the process runtime`}},
		{"empty command", "app: a\nservices:\n  web: {command: ''}\n", []string{`3:18 services.web.command: is empty; it needs a command: a string or a list of strings`}},
		{"empty command list", "app: a\nservices:\n  web: {command: []}\n", []string{`3:18 services.web.command: is empty`}},
		{"command list of lists", "app: a\nservices:\n  web: {command: [a, [b]]}\n", []string{`3:22 services.web.command[1]: must be a string (got a list)`}},
		{"command unterminated", "app: a\nservices:\n  web: {command: 'sh -c \"echo'}\n", []string{`3:18 services.web.command: cannot be split into words: unterminated double quote (opened at character 7)`}},
		{"command shell operator", "app: a\nservices:\n  web: {command: ./a && ./b}\n", []string{`3:18 services.web.command: contains the shell operator "&&", but commands run without a shell; to use one, write it: sh -c '...'`}},
		{"command assignment", "app: a\nservices:\n  web: {command: DEBUG=1 ./a}\n", []string{`3:18 services.web.command: starts with the assignment "DEBUG=1", but commands run without a shell; set DEBUG under env:`}},
		{"duration without unit", svc + "    stop_timeout: 30\n", []string{`5:19 services.web.stop_timeout: must be a duration like "30s", "10m" or "1h30m" (got "30": add a unit, e.g. "30s" or "30m")`}},
		{"duration garbage", svc + "    min_ready: soon\n", []string{`5:16 services.web.min_ready: must be a duration like "30s", "10m" or "1h30m" (got "soon": write a number and a unit`}},
		{"negative duration", svc + "    min_ready: -5s\n", []string{`5:16 services.web.min_ready: must be a duration like "30s", "10m" or "1h30m" (got "-5s": must not be negative)`}},
		{"signal", svc + "    stop_signal: SIGTERN\n", []string{`5:18 services.web.stop_signal: must be a signal like SIGTERM, SIGINT or SIGQUIT (or its number) (got "SIGTERN")`}},
		{"memory", svc + "    memory: 40Q\n", []string{`5:13 services.web.memory: must be a size like "512K", "40M" or "1G", or a byte count (got "40Q": unknown unit "Q"`}},
		{"memory zero", svc + "    memory: 0\n", []string{`5:13 services.web.memory: must be more than 0; leave memory: out for no limit`}},
		{"memory tiny", svc + "    memory: 1M\n", []string{`5:13 services.web.memory: must be at least 6M (got 1M)`}},
		{"cpus", svc + "    cpus: .inf\n", []string{`5:11 services.web.cpus: must be a number of CPUs > 0 (got ".inf")`}},
		{"cpus zero", svc + "    cpus: 0\n", []string{`5:11 services.web.cpus: must be more than 0`}},
		{"root user", svc + "    user: root\n", []string{`5:11 services.web.user: runs the service as root; set allow_root: true`}},
		{"env value a mapping", "app: a\nenv:\n  A: {b: c}\nservices:\n  web: {command: ./run}\n", []string{`3:6 env.A: must be a string, number or boolean, e.g. A: "value" (got a mapping)`}},
		{"env key", "app: a\nenv:\n  1A: x\n  MOORAGE_APP: y\n  PORT: \"1\"\nservices:\n  web: {command: ./run}\n", []string{
			`3:3 env.1A: must start with a letter or '_' and contain only letters, digits and '_' (got "1A")`,
			`4:3 env.MOORAGE_APP: "MOORAGE_APP" is set by moorage for every instance`,
			`5:3 env.PORT: "PORT" is set by moorage`}},
		{"secrets", "app: a\nenv: {A: x}\nsecrets: [A, B, B, b-c]\nservices:\n  web: {command: ./run}\n", []string{
			`3:11 secrets[0]: "A" is also set under env:`,
			`3:17 secrets[2]: "B" is listed twice`,
			`3:20 secrets[3]: must start with a letter or '_'`}},
		{"accessory secrets", "app: a\nservices:\n  web: {command: ./run}\naccessories:\n  db: {command: ./db, port: 5432, env: {A: x}, secrets: [A, P, P]}\n", []string{
			`5:58 accessories.db.secrets[0]: "A" is also set under accessories.db.env:`,
			`5:64 accessories.db.secrets[2]: "P" is listed twice`}},
		{"secrets not a list", "app: a\nsecrets: A\nservices:\n  web: {command: ./run}\n", []string{`2:10 secrets: must be a list, e.g. secrets: [SECRET_KEY, DATABASE_URL] (got "A")`}},
		{"runtime", "app: a\nruntime: podman\nservices:\n  web: {command: ./run}\n", []string{`2:10 runtime: must be "docker", "swarm", "kubernetes" or "process" (got "podman")`}},
		{"image on process", "app: a\nruntime: process\nimage: nginx\nservices:\n  web: {command: ./run}\n", []string{`3:1 image: needs runtime: docker`}},
		{"empty image", "app: a\nimage: ''\nservices:\n  web: {command: ./run}\n", []string{`2:8 image: must not be empty`}},
		{"dockerfile outside the upload", "app: a\nbuild: {dockerfile: ../Dockerfile}\nservices:\n  web: {}\n", []string{`2:21 build.dockerfile: must be a path inside the app's directory, like Dockerfile or docker/web.Dockerfile (got "../Dockerfile")`}},
		{"dockerfile absolute", "app: a\nbuild: {dockerfile: /etc/passwd}\nservices:\n  web: {}\n", []string{`2:21 build.dockerfile: must be a path inside the app's directory`}},
		{"image and build", "app: a\nimage: nginx\nbuild: {dockerfile: Dockerfile}\nservices:\n  web: {}\n", []string{`2:1 image: cannot be set together with build:`}},
		{"workdir relative", "app: a\nbuild: {workdir: app}\nservices:\n  web: {command: ./run}\n", []string{`2:18 build.workdir: must be an absolute path, e.g. /app (got "app")`}},
		{"release item", "app: a\nrelease:\n  - ''\n  - {timeout: 5m}\n  - {command: x, timeout: 0s}\n  - {command: x, time: 1m}\nservices:\n  web: {command: ./run}\n", []string{
			`3:5 release[0]: is empty`,
			`4:5 release[1]: needs command:, e.g. {command: manage.py migrate, timeout: 30m}`,
			`5:27 release[2].timeout: must be more than 0 (got 0s)`,
			`6:18 release[3].time: unknown key "time" (did you mean "timeout"?)`}},
		{"release a mapping", "app: a\nrelease: {a: b}\nservices:\n  web: {command: ./run}\n", []string{`2:10 release: must be a list of commands, e.g. release: [manage.py migrate --noinput] (got a mapping)`}},
		{"health", "app: a\nservices:\n  web:\n    command: ./run\n    health: {path: healthz}\n  worker:\n    command: ./w\n    health: {path: /x, retries: 0, interval: 0s}\n  other:\n    command: ./o\n    health: {tcp: false}\n", []string{
			`5:20 services.web.health.path: must be a URL path starting with "/", e.g. path: /healthz (got "healthz")`,
			`8:20 services.worker.health.path: an HTTP check needs a routed service (one with http:); use command: or tcp: true`,
			`8:33 services.worker.health.retries: must be a whole number ≥ 1 (got 0)`,
			`8:46 services.worker.health.interval: must be more than 0 (got 0s)`,
			`11:5 services.other.health: set one of path: (HTTP GET), command: or tcp: true`}},
		{"health two kinds", svc + "    health: {tcp: true, command: ./c}\n", []string{`5:5 services.web.health: set exactly one of path: (HTTP GET), command: or tcp: true (got command and tcp)`}},
		{"docker tcp check needs port", "app: a\nimage: x\nservices:\n  worker:\n    health: {tcp: true}\n", []string{`5:19 services.worker.health.tcp: needs the service's port`}},
		{"port", "app: a\nimage: x\nservices:\n  web: {port: 70000}\n  api: {port: 0}\n", []string{
			`4:15 services.web.port: must be a port number from 1 to 65535 (got 70000)`,
			`5:15 services.api.port: must be a port number from 1 to 65535 (got 0)`}},
		{"hosts", "app: a\nservices:\n  web:\n    command: ./run\n    http:\n      hosts: [Example.com, 'http://a.test', 'a.test:80', 'a..b', '-a.test', a.test, a.test, 1.2.3, 'fe80::1%eth0', '0:0::1', '[::1]']\n", []string{
			`6:15 services.web.http.hosts[0]: must be lower case: write "example.com" (got "Example.com")`,
			`6:28 services.web.http.hosts[1]: must be a lower-case host name (example.com), a wildcard (*.example.com) or an IP address, not a URL`,
			`6:45 services.web.http.hosts[2]: must be a lower-case host name (example.com), a wildcard (*.example.com) or an IP address, without a port`,
			`6:58 services.web.http.hosts[3]: must be a lower-case host name`,
			`6:66 services.web.http.hosts[4]: must be a lower-case host name`,
			`6:85 services.web.http.hosts[6]: "a.test" is listed twice`,
			`6:93 services.web.http.hosts[7]: must be a lower-case host name (example.com), a wildcard (*.example.com) or an IP address (got "1.2.3", which is neither)`,
			`6:100 services.web.http.hosts[8]: must not have a zone`,
			`6:116 services.web.http.hosts[9]: write the address as "::1"`,
			`6:126 services.web.http.hosts[10]: write IPv6 addresses without brackets`}},
		{"tls auto", "app: a\nservices:\n  web:\n    command: ./run\n    http: {tls: auto, hsts: true}\n  api:\n    command: ./api\n    http: {hosts: ['*.a.test', 10.0.0.1, b.test], tls: auto, canonical: '*.a.test'}\n", []string{
			`5:17 services.web.http.tls: tls: auto needs hosts: certificates are issued for host names`,
			`8:20 services.api.http.hosts[0]: tls: auto cannot get a certificate for the wildcard "*.a.test": wildcards need a DNS challenge; use tls: {cert: FILE, key: FILE}`,
			`8:32 services.api.http.hosts[1]: tls: auto cannot get a certificate for the IP address "10.0.0.1"; use tls: internal`,
			`8:73 services.api.http.canonical: must be one host name, not a wildcard`}},
		{"tls value", svc + "    http: {tls: true}\n    \n", []string{`5:17 services.web.http.tls: must be off, auto, internal or {cert: FILE, key: FILE} (got "true")`}},
		{"tls files incomplete", svc + "    http: {hosts: [a.test], tls: {cert: /c}}\n", []string{`5:29 services.web.http.tls.key: is required: the private key file`}},
		{"hsts without tls", svc + "    http: {hosts: [a.test], hsts: true}\n", []string{`5:35 services.web.http.hsts: needs tls`}},
		{"canonical not a host", svc + "    http: {hosts: [a.test], canonical: b.test}\n", []string{`5:40 services.web.http.canonical: must be one of hosts: "a.test" (got "b.test")`}},
		{"http path", svc + "    http: {path: api}\n", []string{`5:18 services.web.http.path: must be a URL path prefix starting with "/"`}},
		{"two default routes", "app: a\nservices:\n  web: {command: ./run}\n  api:\n    command: ./api\n    http: {}\n", []string{
			`3:3 services.web.http: has no hosts:, and neither has "api": only one routed service can take the default route`}},
		{"host in two services", "app: a\nservices:\n  web:\n    command: ./run\n    http: {hosts: [a.test]}\n  api:\n    command: ./api\n    http: {hosts: [a.test]}\n", []string{
			`5:20 services.web.http.hosts[0]: "a.test" is also a host of service "api"`}},
		{"static", "app: a\nvolumes:\n  media: {mount: /m}\nservices:\n  web:\n    command: ./run\n    http: {static: {/media/: media, /x: media, /y/: nope}}\n", []string{
			`7:37 services.web.http.static./x: must be a path prefix that starts and ends with "/"`,
			`7:53 services.web.http.static./y/: must name a volume declared under volumes: ("media"); got "nope"`}},
		{"volumes", "app: a\nvolumes:\n  data: {mount: /app/data, services: [web, nope, web]}\n  more: {mount: /app/data/}\n  rel: {mount: data}\n  none: {}\n  Bad: {mount: /b}\nservices:\n  web: {command: ./run}\n", []string{
			`3:44 volumes.data.services[1]: there is no service "nope" (services: "web")`,
			`3:50 volumes.data.services[2]: "web" is listed twice`,
			`4:17 volumes.more.mount: /app/data is also the mount of volume "data"`,
			`5:16 volumes.rel.mount: must be an absolute path other than /`,
			`6:3 volumes.none.mount: is required`,
			`7:3 volumes.Bad: must be 1 to 63 characters`}},
		{"accessories", "app: a\nruntime: docker\nservices:\n  web: {}\naccessories:\n  db: {port: 99999, backup: mysql, volumes: [pgdata, 'x:rel', 'Bad:/x', './../etc:/etc', 'a:/d', 'b:/d']}\n  web: {image: x, port: 1}\n  redis: {image: redis}\n", []string{
			`6:3 accessories.db.image: is required on the docker runtime, e.g. image: postgres:16`,
			`6:14 accessories.db.port: must be a port number from 1 to 65535 (got 99999)`,
			`6:29 accessories.db.backup: must be postgres, or left out (got "mysql")`,
			`6:46 accessories.db.volumes[0]: must be "NAME:/path/inside"`,
			`6:54 accessories.db.volumes[1]: must mount at an absolute path inside the container`,
			`6:63 accessories.db.volumes[2]: the volume name must be 1 to 63 characters`,
			`6:73 accessories.db.volumes[3]: host path "./../etc" must be a clean path`,
			`6:98 accessories.db.volumes[5]: /d is mounted twice`,
			`7:3 accessories.web: "web" is also a service`,
			`8:3 accessories.redis.port: is required: the port the accessory listens on`}},
		{"accessory on process", "app: a\nservices:\n  web: {command: ./run}\naccessories:\n  redis: {port: 6379, volumes: ['/srv:/data'], health: {path: /}}\n", []string{
			`5:3 accessories.redis.command: is required on the process runtime`,
			`5:33 accessories.redis.volumes[0]: host paths ("/srv") need the docker runtime`,
			`5:63 accessories.redis.health.path: an HTTP check needs a routed service`}},
		{"deploy", "app: a\ndeploy: {monitor: -1s, release_timeout: 0s, keep_releases: 1, drain: 1s}\nservices:\n  web: {command: ./run}\n", []string{
			`2:19 deploy.monitor: must be a duration like "30s", "10m" or "1h30m" (got "-1s": must not be negative)`,
			`2:41 deploy.release_timeout: must be more than 0 (got 0s)`,
			`2:60 deploy.keep_releases: must be a whole number ≥ 2`,
			`2:63 deploy.drain: unknown key "drain" (did you mean "drain_timeout"?)`}},
		{"keep_warm", "app: a\ndeploy: {keep_warm: -1m}\nservices:\n  web: {command: ./run}\n", []string{
			`2:21 deploy.keep_warm: must be a duration like "30s", "10m" or "1h30m" (got "-1m": must not be negative)`}},
		{"backups", "app: a\nbackups: {schedule: '61 * * * *', keep: 0}\nservices:\n  web: {command: ./run}\n", []string{
			`2:21 backups.schedule: must be a cron expression (got "61 * * * *": minute field "61": 61 must be from 0 to 59)`,
			`2:41 backups.keep: must be a whole number ≥ 1 (got 0)`}},
		{"backups without schedule", "app: a\nbackups: {keep: 3}\nservices:\n  web: {command: ./run}\n", []string{`2:1 backups.schedule: is required`}},
		{"merge of a scalar", "app: a\nservices:\n  web:\n    <<: 5\n    command: ./run\n", []string{`4:9 services.web: merge (<<) takes a mapping or a list of mappings (got "5")`}},
		{"non-string key", "app: a\nservices:\n  web:\n    ? [a]\n    : b\n    command: ./run\n", []string{`4:7 services.web: keys must be plain strings (got a list)`}},
		{"nul in command", "app: a\nservices:\n  web: {command: \"./run\\0\"}\n", []string{`3:18 services.web.command: contains a NUL character`}},
		{"errors through an alias are reported once", "app: a\nx-e: &e {1A: x}\nservices:\n  web: {command: ./run, env: *e}\n  api: {command: ./run, env: *e}\n", []string{
			`2:10 services.api.env.1A: must start with a letter or '_'`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("moorage.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded; want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("errors.As(ErrorList) failed: %v", err)
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, w := range tt.want {
				pos, rest, _ := strings.Cut(w, " ")
				path, text, _ := strings.Cut(rest, ": ")
				e := list[i]
				if got := fmt.Sprintf("%d:%d", e.Line, e.Column); got != pos || e.Path != path || !strings.Contains(e.Msg, text) {
					t.Errorf("error %d:\n got  %d:%d %s: %s\n want %s", i, e.Line, e.Column, e.Path, e.Msg, w)
				}
				if e.File != "moorage.yaml" {
					t.Errorf("error %d names file %q", i, e.File)
				}
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := "app: a\nservices:\n  web: {command: ./run}\n#" + strings.Repeat("x", MaxSize)
	if _, err := Parse("m.yaml", []byte(big)); err == nil || err.Error() != fmt.Sprintf("m.yaml: is %d bytes; a spec may be at most 1048576 bytes (1 MiB)", len(big)) {
		t.Errorf("oversized: %v", err)
	}
	// A valid spec just under the limit parses: the alias budget does not
	// get in the way of big documents without aliases.
	var env strings.Builder
	env.WriteString("app: a\nservices:\n  web:\n    command: ./x\n    env:\n")
	n := 0
	for ; env.Len() < MaxSize-100; n++ {
		fmt.Fprintf(&env, "      K%d: v\n", n)
	}
	if s, err := Parse("m.yaml", []byte(env.String())); err != nil || len(s.Services["web"].Env) != n {
		t.Errorf("big valid spec: %v", err)
	}
	// Many errors are capped.
	var b strings.Builder
	b.WriteString("app: a\nservices:\n  web:\n    command: ./run\n    env:\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "      %d: x\n", i)
	}
	_, err := Parse("m.yaml", []byte(b.String()))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxErrors+1 || list[maxErrors].Msg != "and 200 more errors" {
		t.Errorf("capped errors: %d, last %v", len(list), list[len(list)-1])
	}
}

// TestParsePathological feeds inputs built to make a parser blow up; each
// must come back with an error (these are too big to be good fuzz seeds).
func TestParsePathological(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("app: bomb\nx-svc: &svc\n  command: ./x\n  env:\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&bomb, "    K%d: v\n", i)
	}
	bomb.WriteString("services:\n")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&bomb, "  s%d: *svc\n", i)
	}

	var merge strings.Builder
	merge.WriteString("app: merge\nx-m0: &m0 {command: ./x}\n")
	for i := 1; i < 60; i++ {
		fmt.Fprintf(&merge, "x-m%d: &m%d {<<: [*m%d, *m%d]}\n", i, i, i-1, i-1)
	}
	merge.WriteString("services:\n  web: *m59\n")

	var deep strings.Builder
	deep.WriteString("app: a\nservices:\n")
	for i := 0; i < 1400; i++ {
		deep.WriteString(strings.Repeat(" ", i+1) + "k:\n")
	}

	var many strings.Builder
	many.WriteString("app: Bad\nservices:\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&many, "  S%d: {replicas: x, bogus: 1}\n", i)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		{"alias bomb", bomb.String(), "the document is too large once its aliases are expanded"},
		{"merge doubling", merge.String(), "the document is too large once its aliases are expanded"},
		{"deep flow", "app: a\nservices: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n", "exceeded max depth"},
		{"deep flow mappings", "app: a\nservices: " + strings.Repeat("{a: ", 20000) + strings.Repeat("}", 20000) + "\n", "exceeded max depth"},
		{"deep block", deep.String(), "services.k.command: is required"},
		{"many errors", many.String(), "more errors"},
		{"merge cycle", "app: a\nservices:\n  web: &w\n    command: ./x\n    <<: *w\n", "merge (<<) includes itself"},
		{"recursive alias", "app: a\nservices: &s\n  web: *s\n", `unknown key "web"`},
		{"undefined alias", "app: *nope\n", `unknown anchor 'nope'`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("moorage.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				msg := fmt.Sprint(err)
				if len(msg) > 500 {
					msg = msg[:500]
				}
				t.Fatalf("got %s\nwant %q", msg, tt.want)
			}
		})
	}
}
