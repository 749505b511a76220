package spec

import (
	"math"
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
		d.fail("runtime", false, "must be %q, %q, %q or %q (got %s)", RuntimeDocker, RuntimeSwarm, RuntimeKubernetes, RuntimeProcess, quoteValue(s.Runtime))
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
			d.fail(p, false, "must be more than 0 (got %s)", FormatDuration(v))
		} else {
			d.fail(p, false, "must not be negative (got %s)", FormatDuration(v))
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
