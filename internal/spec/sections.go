package spec

import (
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The keys each part of the spec accepts, in the order the docs list them.
var (
	topKeys       = []string{"app", "runtime", "image", "build", "env", "secrets", "release", "checks", "services", "accessories", "volumes", "deploy", "backups", "logs", "test"}
	buildKeys     = []string{"command", "dockerfile", "target", "args", "workdir"}
	serviceKeys   = []string{"command", "replicas", "singleton", "env", "port", "http", "health", "min_ready", "stop_signal", "stop_timeout", "stop_group", "user", "read_only", "memory", "cpus", "allow_root", "files", "placement"}
	healthKeys    = []string{"path", "command", "tcp", "interval", "timeout", "start_period", "retries"}
	httpKeys      = []string{"hosts", "path", "tls", "canonical", "hsts", "max_body", "hold_timeout", "drain_timeout", "static"}
	tlsKeys       = []string{"cert", "key"}
	accessoryKeys = []string{"image", "command", "env", "secrets", "port", "volumes", "health", "backup", "stop_signal", "stop_timeout", "stop_group", "user", "memory", "cpus", "placement"}
	volumeKeys    = []string{"mount", "services", "driver", "driver_opts"}
	placementKeys = []string{"constraints", "spread"}
	deployKeys    = []string{"monitor", "drain_timeout", "release_timeout", "keep_releases", "keep_warm"}
	backupsKeys   = []string{"schedule", "keep", "to"}
	logsKeys      = []string{"max_age", "max_size"}
	taskKeys      = []string{"command", "timeout"}
	testKeys      = []string{"commands", "env", "secrets"}
)

// spec walks the top-level mapping.
func (d *decoder) spec(root *yaml.Node) *Spec {
	s := &Spec{File: d.file}
	root = d.resolve(root, "")
	if root == nil {
		return s
	}
	if root.Kind != yaml.MappingNode {
		d.errAt(root, "", "must be a mapping with app: and services: at the top level (got %s)", describe(root))
		return s
	}
	d.mapping(root, "", topKeys, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "app":
			s.App = d.str(v, key, "app: myapp")
		case "runtime":
			s.Runtime = d.str(v, key, "runtime: docker")
		case "image":
			s.Image = d.str(v, key, "image: ghcr.io/acme/shop:1.4")
		case "build":
			s.Build = d.build(v, key)
		case "env":
			s.Env = d.env(v, key)
		case "secrets":
			s.Secrets = d.strList(v, key, "secrets: [SECRET_KEY, DATABASE_URL]")
		case "release":
			s.Release = d.tasks(v, key, "release: [manage.py migrate --noinput]")
		case "checks":
			s.Checks = d.tasks(v, key, "checks: [manage.py check --deploy]")
		case "test":
			s.Test = d.test(v, key)
		case "services":
			s.Services = d.services(v, key)
		case "accessories":
			s.Accessories = d.accessories(v, key)
		case "volumes":
			s.Volumes = d.volumes(v, key)
		case "deploy":
			d.deploy(v, key, &s.Deploy)
		case "backups":
			s.Backups = d.backups(v, key)
		case "logs":
			d.logs(v, key, &s.Logs)
		}
	})
	return s
}

func (d *decoder) build(n *yaml.Node, p string) *Build {
	b := &Build{}
	d.mapping(n, p, buildKeys, "build: {dockerfile: Dockerfile}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "command":
			b.Command = d.command(v, q, "command: make assets")
		case "dockerfile":
			b.Dockerfile = d.str(v, q, "dockerfile: Dockerfile")
		case "target":
			b.Target = d.str(v, q, "target: web")
		case "args":
			b.Args = d.env(v, q)
		case "workdir":
			b.Workdir = d.absPath(v, q, "workdir: /app")
		}
	})
	return b
}

// test reads the pipeline's test stage: a list of commands, or a mapping
// with commands:, env: and secrets:.
func (d *decoder) test(n *yaml.Node, p string) *Test {
	if isNull(n) {
		return nil
	}
	t := &Test{}
	if r := d.resolve(n, p); r != nil && r.Kind == yaml.SequenceNode {
		t.Commands = d.tasks(r, p+".commands", "test: [python3 manage.py test]")
		return t
	}
	d.mapping(n, p, testKeys, "test: {commands: [python3 manage.py test], env: {DEBUG: '1'}}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "commands":
			t.Commands = d.tasks(v, q, "commands: [python3 manage.py test]")
		case "env":
			t.Env = d.env(v, q)
		case "secrets":
			t.Secrets = d.strList(v, q, "secrets: [TEST_API_TOKEN]")
		}
	})
	return t
}

// tasks reads release tasks or checks.
func (d *decoder) tasks(n *yaml.Node, p, example string) []Task {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errAt(n, p, "must be a list of commands, e.g. %s (got %s)", example, describe(n))
		return nil
	}
	var out []Task
	for i, raw := range n.Content {
		q := index(p, i)
		item := d.resolve(raw, q)
		if item == nil {
			return out
		}
		d.vals[q] = item
		t := Task{Line: raw.Line}
		if item.Kind == yaml.MappingNode {
			d.mapping(item, q, taskKeys, "{command: manage.py migrate, timeout: 30m}", func(key string, k, v *yaml.Node) {
				switch key {
				case "command":
					t.Command = d.command(v, join(q, key), "command: manage.py migrate")
				case "timeout":
					t.Timeout = d.duration(v, join(q, key), "timeout: 30m")
				}
			})
			if t.Command == nil && !d.given(join(q, "command")) {
				d.errAt(item, q, "needs command:, e.g. {command: manage.py migrate, timeout: 30m}")
			}
		} else {
			t.Command = d.command(item, q, "manage.py migrate --noinput")
		}
		if t.Command == nil {
			d.bad[q] = true
		}
		out = append(out, t)
	}
	return out
}

func (d *decoder) services(n *yaml.Node, p string) map[string]*Service {
	out := map[string]*Service{}
	d.names(n, p, "services: {web: {command: ./server}}", func(name string, k, v *yaml.Node) {
		out[name] = d.service(name, v, join(p, name))
	})
	return out
}

func (d *decoder) service(name string, n *yaml.Node, p string) *Service {
	s := &Service{Name: name}
	d.mapping(n, p, serviceKeys, "web: {command: ./server --port $PORT}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "command":
			s.Command = d.command(v, q, "command: ./server --port $PORT")
		case "replicas":
			s.Replicas = d.int(v, q, "a whole number ≥ 0", "replicas: 2")
		case "singleton":
			s.Singleton = d.bool(v, q, "singleton: true")
		case "env":
			s.Env = d.env(v, q)
		case "port":
			s.Port = d.int(v, q, "a port number from 1 to 65535", "port: 8080")
		case "http":
			s.HTTP = d.http(v, q)
		case "health":
			s.Health = d.health(v, q)
		case "min_ready":
			s.MinReady = d.duration(v, q, "min_ready: 5s")
		case "stop_signal":
			s.StopSignal = d.signal(v, q, "stop_signal: SIGTERM")
		case "stop_timeout":
			s.StopTimeout = d.duration(v, q, "stop_timeout: 30s")
		case "stop_group":
			s.StopGroup = d.bool(v, q, "stop_group: true")
		case "user":
			s.User = d.str(v, q, "user: app")
		case "read_only":
			s.ReadOnly = d.bool(v, q, "read_only: true")
		case "memory":
			s.Memory = d.limitSize(v, q)
		case "cpus":
			s.CPUs = d.cpus(v, q)
		case "allow_root":
			s.AllowRoot = d.bool(v, q, "allow_root: true")
		case "files":
			s.Files = d.mounts(v, q)
		case "placement":
			s.Placement = d.placement(v, q)
		}
	})
	return s
}

// limitSize reads memory: a size > 0 (0 would read as "no limit").
func (d *decoder) limitSize(n *yaml.Node, p string) int64 {
	v := d.size(n, p, "memory: 512M")
	if v == 0 && !d.bad[p] {
		d.errAt(n, p, "must be more than 0; leave memory: out for no limit")
	}
	return v
}

// cpus reads cpus: a number > 0.
func (d *decoder) cpus(n *yaml.Node, p string) float64 {
	v := d.float(n, p, "a number of CPUs > 0", "cpus: 1.5")
	if v == 0 && !d.bad[p] {
		d.errAt(n, p, "must be more than 0; leave cpus: out for no limit")
	}
	return v
}

func (d *decoder) health(n *yaml.Node, p string) *Health {
	h := &Health{}
	d.mapping(n, p, healthKeys, "health: {path: /healthz}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "path":
			h.Path = d.str(v, q, "path: /healthz")
		case "command":
			h.Command = d.command(v, q, "command: ./check")
		case "tcp":
			h.TCP = d.bool(v, q, "tcp: true")
		case "interval":
			h.Interval = d.duration(v, q, "interval: 1s")
		case "timeout":
			h.Timeout = d.duration(v, q, "timeout: 2s")
		case "start_period":
			h.StartPeriod = d.duration(v, q, "start_period: 30s")
		case "retries":
			h.Retries = d.int(v, q, "a whole number ≥ 1", "retries: 3")
		}
	})
	return h
}

func (d *decoder) http(n *yaml.Node, p string) *HTTP {
	h := &HTTP{}
	d.mapping(n, p, httpKeys, "http: {hosts: [example.com], tls: auto}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "hosts":
			h.Hosts = d.strList(v, q, "hosts: [example.com, www.example.com]")
		case "path":
			h.Path = d.str(v, q, "path: /api")
		case "tls":
			h.TLS = d.tls(v, q)
		case "canonical":
			h.Canonical = d.str(v, q, "canonical: example.com")
		case "hsts":
			h.HSTS = d.bool(v, q, "hsts: true")
		case "max_body":
			h.MaxBody = d.size(v, q, "max_body: 40M")
		case "hold_timeout":
			h.HoldTimeout = d.duration(v, q, "hold_timeout: 10s")
		case "drain_timeout":
			h.DrainTimeout = d.duration(v, q, "drain_timeout: 30s")
		case "static":
			h.Static = d.static(v, q)
		}
	})
	return h
}

func (d *decoder) tls(n *yaml.Node, p string) TLS {
	const want = "off, auto, internal or {cert: FILE, key: FILE}"
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := d.scalar(n, p, want+", e.g. tls: auto")
		if !ok {
			return TLS{}
		}
		if s != TLSOff && s != TLSAuto && s != TLSInternal {
			d.errAt(n, p, "must be %s (got %s)", want, quoteValue(s))
		}
		return TLS{Mode: s}
	case yaml.MappingNode:
		t := TLS{Mode: TLSFiles}
		d.mapping(n, p, tlsKeys, "tls: {cert: /etc/ssl/example.pem, key: /etc/ssl/example.key}", func(key string, k, v *yaml.Node) {
			switch key {
			case "cert":
				t.Cert = d.str(v, join(p, key), "cert: /etc/ssl/example.pem")
			case "key":
				t.Key = d.str(v, join(p, key), "key: /etc/ssl/example.key")
			}
		})
		return t
	}
	d.errAt(n, p, "must be %s (got %s)", want, describe(n))
	return TLS{}
}

func (d *decoder) static(n *yaml.Node, p string) map[string]string {
	out := map[string]string{}
	d.names(n, p, "static: {/media/: media}", func(prefix string, k, v *yaml.Node) {
		out[prefix] = d.str(v, join(p, prefix), prefix+": media")
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) accessories(n *yaml.Node, p string) map[string]*Accessory {
	out := map[string]*Accessory{}
	d.names(n, p, "accessories: {redis: {image: redis:7, port: 6379}}", func(name string, k, v *yaml.Node) {
		out[name] = d.accessory(name, v, join(p, name))
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) accessory(name string, n *yaml.Node, p string) *Accessory {
	a := &Accessory{Name: name}
	d.mapping(n, p, accessoryKeys, "redis: {image: redis:7, port: 6379}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "image":
			a.Image = d.str(v, q, "image: postgres:16")
		case "command":
			a.Command = d.command(v, q, "command: redis-server --port $PORT")
		case "env":
			a.Env = d.env(v, q)
		case "secrets":
			a.Secrets = d.strList(v, q, "secrets: [POSTGRES_PASSWORD]")
		case "port":
			a.Port = d.int(v, q, "a port number from 1 to 65535", "port: 5432")
		case "volumes":
			a.Volumes = d.mounts(v, q)
		case "health":
			a.Health = d.health(v, q)
		case "backup":
			a.Backup = d.str(v, q, "backup: postgres")
		case "placement":
			a.Placement = d.placement(v, q)
		case "stop_signal":
			a.StopSignal = d.signal(v, q, "stop_signal: SIGINT")
		case "stop_timeout":
			a.StopTimeout = d.duration(v, q, "stop_timeout: 1m")
		case "stop_group":
			a.StopGroup = d.bool(v, q, "stop_group: true")
		case "user":
			a.User = d.str(v, q, "user: postgres")
		case "memory":
			a.Memory = d.limitSize(v, q)
		case "cpus":
			a.CPUs = d.cpus(v, q)
		}
	})
	return a
}

// mounts reads accessory volumes: "name:/path" strings.
func (d *decoder) mounts(n *yaml.Node, p string) []VolumeMount {
	const example = `volumes: ["pgdata:/var/lib/postgresql/data"]`
	var out []VolumeMount
	for i, s := range d.strList(n, p, example) {
		q := index(p, i)
		name, target, ok := strings.Cut(s, ":")
		if !ok || name == "" || target == "" || strings.Contains(target, ":") {
			if !d.bad[q] {
				d.errAt(d.vals[q], q, `must be "NAME:/path/inside", e.g. "pgdata:/var/lib/postgresql/data" (got %s)`, quoteValue(s))
			}
			out = append(out, VolumeMount{Name: s}) // keeps indexes in step
			continue
		}
		if path.IsAbs(target) {
			target = path.Clean(target)
		}
		if strings.HasPrefix(name, "/") {
			name = path.Clean(name)
		} else if strings.HasPrefix(name, "./") {
			name = "./" + path.Clean(name)
		}
		out = append(out, VolumeMount{Name: name, Path: target})
	}
	return out
}

func (d *decoder) volumes(n *yaml.Node, p string) map[string]*Volume {
	out := map[string]*Volume{}
	d.names(n, p, "volumes: {data: {mount: /app/data}}", func(name string, k, v *yaml.Node) {
		q := join(p, name)
		vol := &Volume{Name: name}
		d.mapping(v, q, volumeKeys, name+": {mount: /app/"+name+"}", func(key string, k, v *yaml.Node) {
			switch key {
			case "mount":
				vol.Mount = d.absPath(v, join(q, key), "mount: /app/data")
			case "services":
				vol.Services = d.strList(v, join(q, key), "services: [web, worker]")
			case "driver":
				vol.Driver = d.str(v, join(q, key), "driver: local")
			case "driver_opts":
				vol.DriverOpts = d.env(v, join(q, key))
			}
		})
		out[name] = vol
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) deploy(n *yaml.Node, p string, dep *Deploy) {
	d.mapping(n, p, deployKeys, "deploy: {monitor: 10s}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "monitor":
			dep.Monitor = d.duration(v, q, "monitor: 10s")
		case "drain_timeout":
			dep.DrainTimeout = d.duration(v, q, "drain_timeout: 30s")
		case "release_timeout":
			dep.ReleaseTimeout = d.duration(v, q, "release_timeout: 10m")
		case "keep_releases":
			dep.KeepReleases = d.int(v, q, "a whole number ≥ 2", "keep_releases: 5")
		case "keep_warm":
			dep.KeepWarm = d.duration(v, q, "keep_warm: 10m")
		}
	})
}

func (d *decoder) backups(n *yaml.Node, p string) *Backups {
	b := &Backups{}
	d.mapping(n, p, backupsKeys, `backups: {schedule: "0 3 * * *", keep: 7}`, func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "schedule":
			b.Schedule = d.str(v, q, `schedule: "0 3 * * *"`)
		case "keep":
			b.Keep = d.int(v, q, "a whole number ≥ 1", "keep: 7")
		case "to":
			b.To = d.str(v, q, "to: /srv/backups")
		}
	})
	return b
}

func (d *decoder) logs(n *yaml.Node, p string, l *Logs) {
	d.mapping(n, p, logsKeys, "logs: {max_age: 14d, max_size: 256M}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "max_age":
			l.MaxAge = d.duration(v, q, "max_age: 14d")
		case "max_size":
			l.MaxSize = d.size(v, q, "max_size: 256M")
		}
	})
}

// placement reads a placement: {constraints: [...], spread: label}.
func (d *decoder) placement(n *yaml.Node, p string) *Placement {
	pl := &Placement{}
	d.mapping(n, p, placementKeys, "placement: {constraints: [node.role==worker]}", func(key string, k, v *yaml.Node) {
		q := join(p, key)
		switch key {
		case "constraints":
			pl.Constraints = d.strList(v, q, "constraints: [node.labels.zone==a]")
			for i, c := range pl.Constraints {
				if r := checkConstraint(c); r != "" {
					d.errAt(v.Content[i], q, "%s", r)
				}
			}
		case "spread":
			pl.Spread = d.str(v, q, "spread: node.labels.zone")
			if pl.Spread != "" && !strings.HasPrefix(pl.Spread, "node.labels.") && !strings.HasPrefix(pl.Spread, "engine.labels.") {
				d.errAt(v, q, "must name a node label, e.g. spread: node.labels.zone (got %q)", pl.Spread)
			}
		}
	})
	if len(pl.Constraints) == 0 && pl.Spread == "" {
		return nil
	}
	return pl
}

// checkConstraint checks the shape of a Swarm placement constraint: an
// attribute, == or !=, and a value. Swarm judges the rest.
func checkConstraint(c string) string {
	op := "=="
	i := strings.Index(c, "==")
	if j := strings.Index(c, "!="); j >= 0 && (i < 0 || j < i) {
		i, op = j, "!="
	}
	if i < 0 {
		return fmt.Sprintf("%q must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, e.g. node.labels.zone==a", c)
	}
	attr, val := strings.TrimSpace(c[:i]), strings.TrimSpace(c[i+len(op):])
	known := false
	for _, a := range []string{"node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch"} {
		known = known || attr == a
	}
	for _, pre := range []string{"node.labels.", "engine.labels."} {
		known = known || (strings.HasPrefix(attr, pre) && len(attr) > len(pre))
	}
	switch {
	case !known:
		return fmt.Sprintf("%q: unknown attribute %q; use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.NAME or engine.labels.NAME", c, attr)
	case val == "":
		return fmt.Sprintf("%q has no value after %s", c, op)
	}
	return ""
}
