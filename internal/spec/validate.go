package spec

import (
	"fmt"
	"math"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	maxReplicas = 1000
	maxCPUs     = 1024
	minMemory   = 6 << 20 // Docker refuses less
)

// validate checks the defaulted spec: ranges, references between parts,
// and rules that involve several keys. Errors go through fail, which finds
// their position (when there is a document) and skips paths that already
// have an error.
func (d *decoder) validate(s *Spec) {
	switch {
	case s.App == "":
		d.fail("app", false, "is required: the app's name, e.g. app: myapp")
	default:
		if r := checkName(s.App); r != "" {
			d.fail("app", false, "%s", r)
		}
	}
	docker := ContainerRuntime(s.Runtime)
	if !KnownRuntime(s.Runtime) {
		d.fail("runtime", false, "must be %q, %q or %q (got %s)", RuntimeDocker, RuntimeSwarm, RuntimeProcess, quoteValue(s.Runtime))
	}

	switch {
	case s.Image == "" && d.given("image"):
		d.fail("image", false, "must not be empty; remove image: to build from the uploaded code")
	case s.Image != "" && s.Build != nil:
		d.fail("image", true, "cannot be set together with build: either build an image from the uploaded code (build:) or run a prebuilt one (image:)")
	case s.Image != "" && s.Runtime == RuntimeProcess:
		d.fail("image", true, "needs runtime: docker; the process runtime runs the uploaded code (remove image: or set runtime: docker)")
	case s.Image != "" && strings.ContainsAny(s.Image, " \t\r\n"):
		d.fail("image", false, "must be an image reference without spaces, e.g. ghcr.io/acme/shop:1.4 (got %s)", quoteValue(s.Image))
	case s.Image == "" && s.Build == nil:
		d.fail("build", false, "is required when there is no image:")
	}
	if b := s.Build; b != nil {
		d.checkAbs("build.workdir", b.Workdir, "/app")
		switch {
		case docker && b.Dockerfile == "":
			d.fail("build.dockerfile", false, "must not be empty (default: Dockerfile)")
		case b.Dockerfile != "" && !filepath.IsLocal(b.Dockerfile):
			d.fail("build.dockerfile", false, "must be a path inside the app's directory, like Dockerfile or docker/web.Dockerfile (got %s)", quoteValue(b.Dockerfile))
		}
		d.checkEnv("build.args", b.Args, false)
		if b.Command != nil {
			d.checkCommand("build.command", b.Command)
		}
	}

	d.checkEnv("env", s.Env, true)
	d.checkEnvRefs("env", s.Env, appEnvVars(s), "every instance")
	d.checkSecrets("secrets", s.Secrets, s.Env)
	d.checkTasks("release", s.Release)
	d.checkTasks("checks", s.Checks)
	if s.Test != nil {
		d.checkTasks("test.commands", s.Test.Commands)
		d.checkEnv("test.env", s.Test.Env, true)
		d.checkEnvRefs("test.env", s.Test.Env, appEnvVars(s), "the test stage")
		if len(s.Test.Commands) == 0 {
			d.fail("test.commands", false, "lists no command; e.g. test: {commands: [python3 manage.py test]}")
		}
		for _, k := range s.Test.Secrets {
			if !slices.Contains(s.Secrets, k) {
				d.fail("test.secrets", false, "names %s, which is not in the spec's secrets:", k)
			}
		}
	}

	dep := s.Deploy
	d.checkDuration("deploy.monitor", dep.Monitor, 0)
	d.checkDuration("deploy.drain_timeout", dep.DrainTimeout, 0)
	d.checkDuration("deploy.release_timeout", dep.ReleaseTimeout, 1)
	d.checkDuration("deploy.keep_warm", dep.KeepWarm, 0)
	if dep.KeepReleases < 2 {
		d.fail("deploy.keep_releases", false, "must be a whole number ≥ 2: the active release and at least one to roll back to (got %d)", dep.KeepReleases)
	}

	if len(s.Services) == 0 {
		d.fail("services", false, "at least one service is required, e.g.\n\n  services:\n    web:\n      command: ./server --port $PORT\n")
	}
	for _, name := range sortedKeys(s.Services) {
		d.checkService(s, name, s.Services[name])
	}
	// Release tasks and checks get every service's files: one directory
	// per target.
	fileAt, fileBy := map[string]string{}, map[string]string{}
	for _, name := range sortedKeys(s.Services) {
		if s.Services[name] == nil {
			continue
		}
		for i, m := range s.Services[name].Files {
			if o, ok := fileAt[m.Path]; ok && o != m.Name {
				d.fail(index("services."+name+".files", i), false, "mounts %s at %s, where service %s mounts %s: release tasks get every service's files, so one path holds one directory", m.Name, m.Path, fileBy[m.Path], o)
				continue
			}
			fileAt[m.Path], fileBy[m.Path] = m.Name, name
		}
	}
	d.checkRoutes(s)
	for _, name := range sortedKeys(s.Accessories) {
		d.checkAccessory(s, name, s.Accessories[name])
	}
	d.checkVolumes(s)

	if s.Logs.MaxAge < time.Hour {
		d.fail("logs.max_age", false, "must be at least 1h (got %s)", s.Logs.MaxAge)
	}
	if s.Logs.MaxSize < 1<<20 {
		d.fail("logs.max_size", false, "must be at least 1M (got %d bytes)", s.Logs.MaxSize)
	}
	if b := s.Backups; b != nil {
		if b.Schedule == "" {
			d.fail("backups.schedule", false, `is required: a cron expression, e.g. schedule: "0 3 * * *" (every day at 03:00)`)
		} else if _, reason := parseCron(b.Schedule); reason != "" {
			d.fail("backups.schedule", false, "must be a cron expression (got %s: %s)", quoteValue(b.Schedule), reason)
		}
		if b.To != "" && !strings.HasPrefix(b.To, "/") {
			d.fail("backups.to", false, "must be an absolute directory on the server (got %s)", quoteValue(b.To))
		}
		if b.Keep < 1 {
			d.fail("backups.keep", false, "must be a whole number ≥ 1 (got %d)", b.Keep)
		}
	}
}

func (d *decoder) checkService(s *Spec, name string, svc *Service) {
	p := "services." + name
	if svc == nil {
		d.fail(p, true, "is empty")
		return
	}
	if r := checkName(name); r != "" {
		d.fail(p, true, "%s", r)
	}
	if svc.Name != name {
		d.fail(p, true, "has name %q; it must match its key", svc.Name)
	}
	docker := ContainerRuntime(s.Runtime)
	if len(svc.Command) == 0 {
		if s.Runtime == RuntimeProcess {
			d.fail(p+".command", true, "is required on the process runtime (there is no image to supply a default), e.g. command: ./server --port $PORT")
		}
	} else {
		d.checkCommand(p+".command", svc.Command)
	}
	switch {
	case svc.Replicas < 0 || svc.Replicas > maxReplicas:
		d.fail(p+".replicas", false, "must be a whole number from 0 to %d (got %d)", maxReplicas, svc.Replicas)
	case svc.Singleton && svc.Replicas > 1:
		d.fail(p+".replicas", false, "must be 0 or 1 for a singleton (got %d): a singleton never runs more than one instance", svc.Replicas)
	}
	if svc.Port < 0 || svc.Port > 65535 {
		d.fail(p+".port", false, "must be a port number from 1 to 65535 (got %d)", svc.Port)
	} else if d.given(p+".port") && svc.Port == 0 {
		d.fail(p+".port", false, "must be a port number from 1 to 65535 (got 0)")
	} else if docker && svc.Routed() && svc.Port == 0 {
		d.fail(p+".port", true, "is required for a routed service on the docker runtime (default %d)", DefaultDockerPort)
	}
	if svc.HTTP != nil {
		d.checkHTTP(s, p+".http", svc.HTTP)
	}
	if svc.Health != nil {
		d.checkHealth(p+".health", svc.Health, svc.Routed())
		if docker && svc.Health.TCP && svc.Port == 0 {
			d.fail(p+".health.tcp", false, "needs the service's port: set port: (the port the service listens on in its container)")
		}
	} else if svc.Routed() {
		d.fail(p+".health", true, "is required for a routed service")
	}
	d.checkDuration(p+".min_ready", svc.MinReady, 0)
	d.checkSignal(p+".stop_signal", svc.StopSignal)
	d.checkDuration(p+".stop_timeout", svc.StopTimeout, 0)
	d.checkLimits(p, svc.Memory, svc.CPUs)
	if !svc.AllowRoot && isRoot(svc.User) {
		d.fail(p+".user", false, "runs the service as root; set allow_root: true if that is intended")
	}
	targets := map[string]bool{}
	for _, v := range s.VolumesFor(name) {
		targets[v.Mount] = true
	}
	for i, m := range svc.Files {
		q := index(p+".files", i)
		if !strings.HasPrefix(m.Name, "./") || "./"+path.Clean(m.Name) != m.Name || m.Name == "./." || strings.HasPrefix(m.Name, "./../") {
			d.fail(q, false, "must be a directory of the app's upload, a clean ./dir (got %s), e.g. \"./custom:/app/custom\"", quoteValue(m.Name))
		}
		if !path.IsAbs(m.Path) || path.Clean(m.Path) != m.Path || m.Path == "/" {
			d.fail(q, false, "must mount at an absolute path inside the container, e.g. \"%s:/app/custom\" (got %s)", m.Name, quoteValue(m.Path))
		} else if targets[m.Path] {
			d.fail(q, false, "%s is mounted twice (by a volume or another file)", m.Path)
		}
		targets[m.Path] = true
	}
	d.checkEnv(p+".env", svc.Env, true)
	d.checkEnvRefs(p+".env", svc.Env, serviceEnvVars(s, name, svc), "service "+name)
}

// isRoot reports whether a user spec names root.
func isRoot(u string) bool {
	name, _, _ := strings.Cut(u, ":")
	return name == "root" || name == "0"
}

func (d *decoder) checkHTTP(s *Spec, p string, h *HTTP) {
	if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "?# \t\r\n") {
		d.fail(p+".path", false, "must be a URL path prefix starting with \"/\", e.g. path: /api (got %s)", quoteValue(h.Path))
	}
	seen := map[string]bool{}
	for i, host := range h.Hosts {
		q := index(p+".hosts", i)
		if r := checkHost(host); r != "" {
			d.fail(q, false, "%s", r)
			continue
		}
		if seen[host] {
			d.fail(q, false, "%q is listed twice", host)
		}
		seen[host] = true
	}
	switch h.TLS.Mode {
	case TLSOff, TLSAuto, TLSInternal:
		if h.TLS.Cert != "" || h.TLS.Key != "" {
			d.fail(p+".tls", false, "cert and key only go with tls: {cert: FILE, key: FILE}")
		}
	case TLSFiles:
		if h.TLS.Cert == "" {
			d.fail(p+".tls.cert", true, "is required: the certificate file (PEM) on the server, e.g. cert: /etc/ssl/example.pem")
		}
		if h.TLS.Key == "" {
			d.fail(p+".tls.key", true, "is required: the private key file (PEM) on the server, e.g. key: /etc/ssl/example.key")
		}
	default:
		d.fail(p+".tls", false, "must be off, auto, internal or {cert: FILE, key: FILE} (got %s)", quoteValue(h.TLS.Mode))
	}
	if h.TLS.Mode == TLSAuto {
		if len(h.Hosts) == 0 {
			d.fail(p+".tls", false, "tls: auto needs hosts: certificates are issued for host names (add hosts: [example.com], or use tls: internal)")
		}
		for i, host := range h.Hosts {
			q := index(p+".hosts", i)
			switch {
			case strings.HasPrefix(host, "*."):
				d.fail(q, false, "tls: auto cannot get a certificate for the wildcard %q: wildcards need a DNS challenge; use tls: {cert: FILE, key: FILE}", host)
			case isIP(host):
				d.fail(q, false, "tls: auto cannot get a certificate for the IP address %q; use tls: internal", host)
			}
		}
	}
	if h.Canonical != "" {
		switch {
		case strings.HasPrefix(h.Canonical, "*."):
			d.fail(p+".canonical", false, "must be one host name, not a wildcard (got %s)", quoteValue(h.Canonical))
		case !contains(h.Hosts, h.Canonical):
			d.fail(p+".canonical", false, "must be one of hosts: %s (got %s)", quoteList(h.Hosts), quoteValue(h.Canonical))
		}
	}
	if h.HSTS && h.TLS.Mode == TLSOff {
		d.fail(p+".hsts", false, "needs tls: browsers ignore HSTS over plain HTTP (set tls: auto, internal or {cert, key})")
	}
	if h.MaxBody < 0 {
		d.fail(p+".max_body", false, "must not be negative")
	}
	d.checkDuration(p+".hold_timeout", h.HoldTimeout, 0)
	d.checkDuration(p+".drain_timeout", h.DrainTimeout, 0)
	for _, prefix := range sortedKeys(h.Static) {
		q := p + ".static." + prefix
		if len(prefix) < 2 || !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") || strings.ContainsAny(prefix, "?# \t\r\n") {
			d.fail(q, true, "must be a path prefix that starts and ends with \"/\", e.g. /media/ (got %s)", quoteValue(prefix))
		}
		vol := h.Static[prefix]
		if _, ok := s.Volumes[vol]; !ok {
			d.fail(q, false, "must name a volume declared under volumes: (%s); got %s", quoteList(sortedKeys(s.Volumes)), quoteValue(vol))
		}
	}
}

// checkHost returns why h is not a valid route host, or "".
func checkHost(h string) string {
	const rule = "must be a lower-case host name (example.com), a wildcard (*.example.com) or an IP address"
	if h == "" {
		return rule + " (got \"\")"
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return fmt.Sprintf("must not have a zone (got %s)", quoteValue(h))
		}
		if a.String() != h {
			return fmt.Sprintf("write the address as %q (got %s)", a.String(), quoteValue(h))
		}
		return ""
	}
	switch {
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%s, not a URL (got %s)", rule, quoteValue(h))
	case strings.HasPrefix(h, "["):
		return fmt.Sprintf("write IPv6 addresses without brackets (got %s)", quoteValue(h))
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%s, without a port (got %s)", rule, quoteValue(h))
	case strings.ToLower(h) != h:
		return fmt.Sprintf("must be lower case: write %q (got %s)", strings.ToLower(h), quoteValue(h))
	}
	name := strings.TrimPrefix(h, "*.")
	if len(name) > 253 {
		return fmt.Sprintf("%s; a host name is at most 253 characters", rule)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("%s (got %s)", rule, quoteValue(h))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("%s (got %s)", rule, quoteValue(h))
			}
		}
	}
	if isDigits(labels[len(labels)-1]) {
		return fmt.Sprintf("%s (got %s, which is neither)", rule, quoteValue(h))
	}
	return ""
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// checkRoutes checks what involves every routed service: hosts are unique
// and at most one service is the default route.
func (d *decoder) checkRoutes(s *Spec) {
	owner := map[string]string{}
	defaultRoute := ""
	for _, name := range sortedKeys(s.Services) {
		svc := s.Services[name]
		if svc == nil || svc.HTTP == nil {
			continue
		}
		p := "services." + name + ".http"
		if len(svc.HTTP.Hosts) == 0 {
			if defaultRoute != "" {
				d.fail(p, true, "has no hosts:, and neither has %q: only one routed service can take the default route; give one of them hosts:", defaultRoute)
			} else {
				defaultRoute = name
			}
		}
		for i, h := range svc.HTTP.Hosts {
			if other, ok := owner[h]; ok && other != name {
				d.fail(index(p+".hosts", i), false, "%q is also a host of service %q; a host routes to one service", h, other)
			}
			owner[h] = name
		}
	}
}

func (d *decoder) checkHealth(p string, h *Health, routed bool) {
	var set []string
	if h.Path != "" {
		set = append(set, "path")
	}
	if len(h.Command) > 0 {
		set = append(set, "command")
	}
	if h.TCP {
		set = append(set, "tcp")
	}
	switch len(set) {
	case 0:
		d.fail(p, true, "set one of path: (HTTP GET), command: or tcp: true, e.g. health: {path: /healthz}")
	case 1:
	default:
		d.fail(p, true, "set exactly one of path: (HTTP GET), command: or tcp: true (got %s)", strings.Join(set, " and "))
	}
	if h.Path != "" {
		if !routed {
			d.fail(p+".path", false, "an HTTP check needs a routed service (one with http:); use command: or tcp: true")
		} else if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n") {
			d.fail(p+".path", false, "must be a URL path starting with \"/\", e.g. path: /healthz (got %s)", quoteValue(h.Path))
		}
	}
	if len(h.Command) > 0 {
		d.checkCommand(p+".command", h.Command)
	}
	d.checkDuration(p+".interval", h.Interval, 1)
	d.checkDuration(p+".timeout", h.Timeout, 1)
	d.checkDuration(p+".start_period", h.StartPeriod, 0)
	if h.Retries < 1 {
		d.fail(p+".retries", false, "must be a whole number ≥ 1 (got %d)", h.Retries)
	}
}

// checkSecrets checks a list of secret names: valid, unique, and not also
// plain values under env.
func (d *decoder) checkSecrets(p string, names []string, env map[string]string) {
	envPath := strings.TrimSuffix(strings.TrimSuffix(p, "secrets"), ".")
	if envPath == "" {
		envPath = "env"
	} else {
		envPath += ".env"
	}
	seen := map[string]bool{}
	for i, k := range names {
		q := index(p, i)
		switch {
		case checkEnvKey(k) != "":
			d.fail(q, false, "%s", checkEnvKey(k))
		case seen[k]:
			d.fail(q, false, "%q is listed twice", k)
		default:
			if _, ok := env[k]; ok {
				d.fail(q, false, "%q is also set under %s:; a variable is either plain config (env:) or a secret, not both", k, envPath)
			}
		}
		seen[k] = true
	}
}

func (d *decoder) checkAccessory(s *Spec, name string, a *Accessory) {
	p := "accessories." + name
	if a == nil {
		d.fail(p, true, "is empty")
		return
	}
	if r := checkName(name); r != "" {
		d.fail(p, true, "%s", r)
	}
	if a.Name != name {
		d.fail(p, true, "has name %q; it must match its key", a.Name)
	}
	if _, ok := s.Services[name]; ok {
		d.fail(p, true, "%q is also a service; accessories and services share one namespace", name)
	}
	docker := ContainerRuntime(s.Runtime)
	if docker && a.Image == "" {
		d.fail(p+".image", true, "is required on the docker runtime, e.g. image: postgres:16")
	}
	if s.Runtime == RuntimeProcess && len(a.Command) == 0 {
		d.fail(p+".command", true, "is required on the process runtime, e.g. command: redis-server --port $PORT")
	}
	if len(a.Command) > 0 {
		d.checkCommand(p+".command", a.Command)
	}
	if a.Port < 1 || a.Port > 65535 {
		if a.Port == 0 && !d.given(p+".port") {
			d.fail(p+".port", true, "is required: the port the accessory listens on, e.g. port: 5432")
		} else {
			d.fail(p+".port", false, "must be a port number from 1 to 65535 (got %d)", a.Port)
		}
	}
	targets := map[string]bool{}
	for i, m := range a.Volumes {
		q := index(p+".volumes", i)
		switch {
		case strings.HasPrefix(m.Name, "/") || strings.HasPrefix(m.Name, "."):
			switch {
			case !docker:
				d.fail(q, false, "host paths (%s) need the docker runtime; use a named volume", quoteValue(m.Name))
			case strings.HasPrefix(m.Name, "/") && path.Clean(m.Name) != m.Name,
				strings.HasPrefix(m.Name, ".") && (!strings.HasPrefix(m.Name, "./") || "./"+path.Clean(m.Name) != m.Name),
				m.Name == "/", m.Name == "./.", strings.HasPrefix(m.Name, "./../"):
				d.fail(q, false, "host path %s must be a clean path: an absolute one, or ./dir inside the app's directory", quoteValue(m.Name))
			}
		default:
			if r := checkName(m.Name); r != "" {
				d.fail(q, false, "the volume name %s", r)
			}
		}
		if !path.IsAbs(m.Path) || path.Clean(m.Path) != m.Path || m.Path == "/" {
			d.fail(q, false, "must mount at an absolute path inside the container, e.g. \"%s:/data\" (got %s)", m.Name, quoteValue(m.Path))
		} else if targets[m.Path] {
			d.fail(q, false, "%s is mounted twice", m.Path)
		}
		targets[m.Path] = true
	}
	if a.Health != nil {
		d.checkHealth(p+".health", a.Health, false)
	}
	if a.Backup != "" && a.Backup != "postgres" {
		d.fail(p+".backup", false, "must be postgres, or left out (got %s)", quoteValue(a.Backup))
	}
	d.checkSignal(p+".stop_signal", a.StopSignal)
	d.checkDuration(p+".stop_timeout", a.StopTimeout, 0)
	d.checkLimits(p, a.Memory, a.CPUs)
	d.checkEnv(p+".env", a.Env, true)
	d.checkEnvRefs(p+".env", a.Env, accessoryEnvVars(s, a), "accessory "+name)
	d.checkSecrets(p+".secrets", a.Secrets, a.Env)
}

func (d *decoder) checkVolumes(s *Spec) {
	mounts := map[string]string{}
	for _, name := range sortedKeys(s.Volumes) {
		v := s.Volumes[name]
		p := "volumes." + name
		if v == nil {
			d.fail(p, true, "is empty")
			continue
		}
		if r := checkName(name); r != "" {
			d.fail(p, true, "%s", r)
		}
		if v.Name != name {
			d.fail(p, true, "has name %q; it must match its key", v.Name)
		}
		switch {
		case v.Mount == "":
			d.fail(p+".mount", true, "is required: where the volume appears, e.g. mount: /app/%s", name)
		case !path.IsAbs(v.Mount) || path.Clean(v.Mount) != v.Mount || v.Mount == "/":
			d.fail(p+".mount", false, "must be an absolute path other than /, e.g. mount: /app/%s (got %s)", name, quoteValue(v.Mount))
		case mounts[v.Mount] != "":
			d.fail(p+".mount", false, "%s is also the mount of volume %q", v.Mount, mounts[v.Mount])
		default:
			mounts[v.Mount] = name
		}
		seen := map[string]bool{}
		for i, svc := range v.Services {
			q := index(p+".services", i)
			switch {
			case s.Services[svc] == nil:
				d.fail(q, false, "there is no service %s (services: %s)", quoteValue(svc), quoteList(sortedKeys(s.Services)))
			case seen[svc]:
				d.fail(q, false, "%q is listed twice", svc)
			}
			seen[svc] = true
		}
	}
}

func (d *decoder) checkTasks(p string, tasks []Task) {
	for i, t := range tasks {
		q := index(p, i)
		if len(t.Command) == 0 {
			d.fail(q, false, "command is empty")
		} else {
			d.checkCommand(q, t.Command)
		}
		d.checkDuration(q+".timeout", t.Timeout, 1)
	}
}

// checkCommand checks an argv (Parse has split and checked the text).
func (d *decoder) checkCommand(p string, c Command) {
	switch {
	case len(c) == 0:
		d.fail(p, false, "is empty")
	case c[0] == "":
		d.fail(p, false, "the program to run (the first word) is empty")
	}
	for _, a := range c {
		if strings.IndexByte(a, 0) >= 0 {
			d.fail(p, false, "contains a NUL character")
			return
		}
	}
}

// checkEnv checks variable names (and, for environments, reserved ones).
func (d *decoder) checkEnv(p string, env map[string]string, reserved bool) {
	for _, k := range sortedKeys(env) {
		q := join(p, k)
		if !envKeyRe.MatchString(k) {
			d.fail(q, true, "%s (got %s)", envKeyRule, quoteValue(k))
		} else if reserved && reservedEnv(k) {
			d.fail(q, true, "%s", checkEnvKey(k))
		}
		if strings.IndexByte(env[k], 0) >= 0 {
			d.fail(q, false, "contains a NUL character")
		}
	}
}

// checkDuration checks v ≥ minimum (0 or 1ns, i.e. > 0).
func (d *decoder) checkDuration(p string, v time.Duration, minimum time.Duration) {
	if v < minimum {
		if minimum > 0 {
			d.fail(p, false, "must be more than 0 (got %s)", formatDuration(v))
		} else {
			d.fail(p, false, "must not be negative (got %s)", formatDuration(v))
		}
	}
}

func (d *decoder) checkSignal(p string, sig Signal) {
	for _, x := range signals {
		if x.sig == syscall.Signal(sig) {
			return
		}
	}
	d.fail(p, false, "must be a signal like SIGTERM, SIGINT or SIGQUIT (got %s)", quoteValue(sig.String()))
}

// checkLimits checks memory and cpus of p.
func (d *decoder) checkLimits(p string, memory int64, cpus float64) {
	if memory != 0 && memory < minMemory {
		d.fail(p+".memory", false, "must be at least 6M (got %s)", formatSize(memory))
	}
	if cpus != 0 && (cpus < 0.01 || cpus > maxCPUs || math.IsNaN(cpus)) {
		d.fail(p+".cpus", false, "must be a number from 0.01 to %d (got %v)", maxCPUs, cpus)
	}
}

// checkAbs checks an absolute, clean path.
func (d *decoder) checkAbs(p, v, example string) {
	if !path.IsAbs(v) || path.Clean(v) != v {
		d.fail(p, false, "must be an absolute path, e.g. %s (got %s)", example, quoteValue(v))
	}
}

// checkEnvRefs checks that every $NAME in env's values is a variable
// moorage sets for who (the instances that get env): those expand; any
// other would be taken literally, which is never what was meant.
func (d *decoder) checkEnvRefs(p string, env map[string]string, vars envVars, who string) {
	for _, k := range sortedKeys(env) {
		q := join(p, k)
		refs, bad := EnvValueRefs(env[k])
		if bad != "" {
			d.fail(q, false, "%s; write $$ for a literal $", bad)
			continue
		}
		for _, r := range refs {
			if vars.has(r) {
				continue
			}
			hint := "moorage expands only its own variables in env values (for " + who + ": " + vars.list() + ")"
			switch {
			case strings.HasPrefix(r, "MOORAGE_VOLUME_"):
				hint = "it is not a volume " + who + " mounts; " + hint
			case r == "PORT":
				hint = "the instances that get this env have no port; " + hint
			case r == "MOORAGE_RELEASE":
				hint = "accessories outlive releases; " + hint
			}
			d.fail(q, false, "$%s would be taken literally: %s; write $$ for a literal $", r, hint)
			break
		}
	}
}

// appEnvVars are the variables the top-level env can use: those every
// service and release task gets.
func appEnvVars(s *Spec) envVars {
	ev := envVars{port: true, release: true, volumes: map[string]bool{}, accessed: accessoryVars(s)}
	for _, v := range s.Volumes {
		if v == nil {
			continue
		}
		all := true
		for name := range s.Services {
			if !slices.Contains(s.VolumesFor(name), v) {
				all = false
			}
		}
		if all {
			ev.volumes[VolumeEnv(v.Name)] = true
		}
	}
	return ev
}

func serviceEnvVars(s *Spec, name string, svc *Service) envVars {
	ev := envVars{port: s.Runtime == RuntimeProcess || svc.Port > 0, release: true, volumes: map[string]bool{}, accessed: accessoryVars(s)}
	for _, v := range s.VolumesFor(name) {
		ev.volumes[VolumeEnv(v.Name)] = true
	}
	return ev
}

func accessoryEnvVars(s *Spec, a *Accessory) envVars {
	ev := envVars{port: true, appDir: s.Runtime == RuntimeProcess, volumes: map[string]bool{}}
	for _, m := range a.Volumes {
		if !strings.HasPrefix(m.Name, "/") && !strings.HasPrefix(m.Name, ".") {
			ev.volumes[VolumeEnv(m.Name)] = true
		}
	}
	return ev
}

func accessoryVars(s *Spec) map[string]bool {
	out := map[string]bool{}
	for name := range s.Accessories {
		p := "MOORAGE_ACCESSORY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		out[p+"_HOST"], out[p+"_PORT"], out[p+"_ADDR"] = true, true, true
	}
	return out
}
