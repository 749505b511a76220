// Package spec parses, defaults and validates moorage.yaml.
//
// Parse is strict: unknown keys are errors, and every error names the file,
// line and column and says what would be valid. The types below are the
// normalized form every other package works with: after Parse, defaults are
// applied and every reference (volume → service, accessory volume, canonical
// host) has been checked.
package spec

import (
	"sort"
	"strings"
	"syscall"
	"time"
)

// Runtime names.
const (
	RuntimeProcess = "process"
	RuntimeDocker  = "docker"
	RuntimeSwarm   = "swarm" // a Docker Swarm, through a manager's Docker API
	// RuntimeKubernetes is a Kubernetes cluster, through its API server.
	RuntimeKubernetes = "kubernetes"
)

// Runtimes lists every runtime name, for errors and help texts.
var Runtimes = []string{RuntimeDocker, RuntimeSwarm, RuntimeKubernetes, RuntimeProcess}

// ContainerRuntime reports whether rt runs images in containers (docker,
// swarm and kubernetes): the spec rules of images, ports and root
// filesystems apply.
func ContainerRuntime(rt string) bool {
	return rt == RuntimeDocker || rt == RuntimeSwarm || rt == RuntimeKubernetes
}

// KnownRuntime reports whether rt names a runtime.
func KnownRuntime(rt string) bool { return rt == RuntimeProcess || ContainerRuntime(rt) }

// TLS modes for an HTTP route.
const (
	TLSOff      = "off"      // plain HTTP only (the default)
	TLSAuto     = "auto"     // ACME (Let's Encrypt by default)
	TLSInternal = "internal" // moorage's own CA, for IPs and local names
	TLSFiles    = "files"    // own certificate and key files (tls: {cert, key})
)

// Defaults applied by Parse where the spec is silent.
const (
	DefaultReplicas       = 1
	DefaultMinReady       = 5 * time.Second
	DefaultStopTimeout    = 10 * time.Second
	DefaultMonitor        = 10 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
	DefaultReleaseTimeout = 10 * time.Minute
	DefaultKeepReleases   = 5
	DefaultKeepWarm       = 10 * time.Minute
	DefaultHealthInterval = 1 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultStartPeriod    = 30 * time.Second
	DefaultHoldTimeout    = 10 * time.Second
	DefaultWorkdir        = "/app"
	DefaultDockerPort     = 8080
	DefaultHealthRetries  = 3
	DefaultBackupKeep     = 7
	DefaultLogMaxAge      = 14 * 24 * time.Hour
	DefaultLogMaxSize     = 256 << 20
)

// Spec is a parsed, defaulted and validated moorage.yaml.
type Spec struct {
	File    string `json:"file,omitempty"` // path the spec was read from (for messages)
	App     string `json:"app"`
	Runtime string `json:"runtime"` // RuntimeProcess, RuntimeDocker, RuntimeSwarm or RuntimeKubernetes

	Build *Build `json:"build,omitempty"` // nil when Image is set
	Image string `json:"image,omitempty"` // prebuilt image (docker only)

	Env     map[string]string `json:"env,omitempty"`
	Secrets []string          `json:"secrets,omitempty"` // names; values come from `moorage config set --secret`

	Release []Task `json:"release,omitempty"` // release tasks, in order, once per deploy
	Checks  []Task `json:"checks,omitempty"`  // run in the new release before cutover
	// Test is what the pipeline (git push, webhooks) runs in a new build
	// before deploying it; `moorage deploy` does not run it.
	Test *Test `json:"test,omitempty"`

	Deploy Deploy `json:"deploy"`

	Services    map[string]*Service   `json:"services"`
	Accessories map[string]*Accessory `json:"accessories,omitempty"`
	Volumes     map[string]*Volume    `json:"volumes,omitempty"`

	Backups *Backups `json:"backups,omitempty"`
	Logs    Logs     `json:"logs"`
}

// Logs is the app's log retention: the logs of instances that no longer
// run are deleted once older than MaxAge, and the oldest go first when the
// app's logs outgrow MaxSize.
type Logs struct {
	MaxAge  time.Duration `json:"max_age"`
	MaxSize int64         `json:"max_size"` // bytes
}

// Build says how the artifact of a release is made from the uploaded context.
type Build struct {
	// Command runs first, in the uploaded context (process runtime: in the
	// new release directory; docker: in the context before the image build).
	Command    Command           `json:"command,omitempty"`
	Dockerfile string            `json:"dockerfile,omitempty"` // docker; default "Dockerfile"
	Target     string            `json:"target,omitempty"`     // docker multi-stage target
	Args       map[string]string `json:"args,omitempty"`       // docker build args
	// Workdir is where the app lives inside the image (default /app). The
	// process runtime maps volume mounts under Workdir into the release
	// directory, so one spec serves both runtimes.
	Workdir string `json:"workdir"`
}

// Command is an argv. In YAML it is either a string, split with shell-like
// quoting rules (no shell is involved), or a list of strings. `$VAR` and
// `${VAR}` are expanded by the runtime from the instance's environment just
// before it starts (so `$PORT` works). To use a shell, write it:
// `sh -c "a && b"`.
type Command []string

// Task is a release task or a check.
type Task struct {
	Command Command       `json:"command"`
	Timeout time.Duration `json:"timeout"` // default DefaultReleaseTimeout
	// Line is the 1-based line in the spec, to point at a failing task.
	Line int `json:"line,omitempty"`
}

// Test is the pipeline's test stage: commands run one after the other in
// the new build, with the spec's env, then Env over it, and of the app's
// secrets only those listed in Secrets (config values are left out too:
// tests do not talk to production).
type Test struct {
	Commands []Task            `json:"commands"`
	Env      map[string]string `json:"env,omitempty"`
	Secrets  []string          `json:"secrets,omitempty"`
}

// Deploy holds the tunables of the deploy contract.
type Deploy struct {
	Monitor        time.Duration `json:"monitor"`         // watch window after cutover; 0 disables
	DrainTimeout   time.Duration `json:"drain_timeout"`   // in-flight requests to old web instances
	ReleaseTimeout time.Duration `json:"release_timeout"` // default timeout for release tasks and checks
	KeepReleases   int           `json:"keep_releases"`   // artifacts kept for rollback
	// KeepWarm is how long the previous release's web instances keep
	// running, unrouted, after a deploy: a rollback within it serves from
	// them at once. 0 stops them at the end of the deploy.
	KeepWarm time.Duration `json:"keep_warm"`
}

// Service is one process type of the app.
type Service struct {
	Name      string            `json:"name"`
	Command   Command           `json:"command,omitempty"` // empty: the image's default (docker)
	Replicas  int               `json:"replicas"`
	Singleton bool              `json:"singleton,omitempty"` // stop-first; Replicas is 1 (or 0)
	Env       map[string]string `json:"env,omitempty"`       // merged over the app's env

	// Port is the port the service listens on inside a container (docker;
	// default DefaultDockerPort for routed services). The process runtime
	// always picks a free port and passes it as $PORT.
	Port int `json:"port,omitempty"`

	HTTP   *HTTP   `json:"http,omitempty"` // non-nil: routed by the proxy
	Health *Health `json:"health,omitempty"`

	// MinReady: a service without a health check is ready when it has stayed
	// up this long.
	MinReady    time.Duration `json:"min_ready"`
	StopSignal  Signal        `json:"stop_signal"`
	StopTimeout time.Duration `json:"stop_timeout"`
	// StopGroup (process runtime) sends StopSignal to the instance's whole
	// process group instead of its main process only.
	StopGroup bool `json:"stop_group,omitempty"`

	// User and AllowRoot: who the service runs as (both runtimes; on the
	// process runtime the default is the app's own unprivileged user when
	// the server runs as root, and AllowRoot runs it as the server's user).
	// ReadOnly, Memory, CPUs: docker only (ignored by the process runtime,
	// with a warning).
	User      string  `json:"user,omitempty"`
	ReadOnly  bool    `json:"read_only,omitempty"`
	Memory    int64   `json:"memory,omitempty"` // bytes
	CPUs      float64 `json:"cpus,omitempty"`
	AllowRoot bool    `json:"allow_root,omitempty"`
	// Placement says which nodes may run the service (swarm only).
	Placement *Placement `json:"placement,omitempty"`

	// Files are directories of the upload ("./custom") the service reads:
	// on docker each is mounted read-only at its Path, from the copy kept
	// with the release; the process runtime runs in the release directory,
	// where they already are (Path is not used there).
	Files []VolumeMount `json:"files,omitempty"`
}

// Routed reports whether the proxy sends traffic to the service.
func (s *Service) Routed() bool { return s.HTTP != nil }

// Health is a readiness and liveness check. Exactly one of Path (HTTP GET,
// 2xx/3xx is healthy), Command (exit 0 is healthy) or TCP (connect) is set.
type Health struct {
	Path        string        `json:"path,omitempty"`
	Command     Command       `json:"command,omitempty"`
	TCP         bool          `json:"tcp,omitempty"`
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"start_period"` // how long a new instance may take to become healthy
	Retries     int           `json:"retries"`      // consecutive failures before unhealthy (after ready)
	// Implied is set by Parse for the check it gives a routed service whose
	// spec has none (a TCP connect): on docker, the image's own HEALTHCHECK
	// gates its instances instead.
	Implied bool `json:"implied,omitempty"`
}

// HTTP is the routing configuration of a service.
type HTTP struct {
	// Hosts are exact names or "*.domain" wildcards. Empty: the default
	// route (any host no other app claims).
	Hosts     []string `json:"hosts,omitempty"`
	Path      string   `json:"path,omitempty"`      // path prefix; default "/"
	TLS       TLS      `json:"tls"`                 // default TLSOff
	Canonical string   `json:"canonical,omitempty"` // redirect other hosts here
	HSTS      bool     `json:"hsts,omitempty"`
	MaxBody   int64    `json:"max_body,omitempty"` // bytes; 0 = unlimited
	// HoldTimeout: requests wait this long for a healthy instance.
	HoldTimeout  time.Duration     `json:"hold_timeout"`
	DrainTimeout time.Duration     `json:"drain_timeout,omitempty"` // overrides deploy.drain_timeout
	Static       map[string]string `json:"static,omitempty"`        // path prefix → volume name
}

// TLS says where a route's certificate comes from.
type TLS struct {
	Mode string `json:"mode"`           // TLSOff, TLSAuto, TLSInternal or TLSFiles
	Cert string `json:"cert,omitempty"` // TLSFiles
	Key  string `json:"key,omitempty"`  // TLSFiles
}

// Accessory is a long-lived dependency (postgres, redis) that app deploys
// never restart unless its own spec changed.
type Accessory struct {
	Name    string            `json:"name"`
	Image   string            `json:"image,omitempty"`   // docker
	Command Command           `json:"command,omitempty"` // process runtime (required there); docker: overrides the image's
	Env     map[string]string `json:"env,omitempty"`
	// Secrets are the names of the secrets (`moorage config set --secret`)
	// this accessory gets in its environment; it gets no others.
	Secrets []string `json:"secrets,omitempty"`
	// Port the accessory listens on. Services get
	// MOORAGE_ACCESSORY_<NAME>_HOST/_PORT/_ADDR to reach it.
	Port        int           `json:"port,omitempty"`
	Volumes     []VolumeMount `json:"volumes,omitempty"`
	Health      *Health       `json:"health,omitempty"`
	Backup      string        `json:"backup,omitempty"` // "" or "postgres"
	StopSignal  Signal        `json:"stop_signal"`
	StopTimeout time.Duration `json:"stop_timeout"`
	// StopGroup (process runtime) sends StopSignal to the instance's whole
	// process group instead of its main process only.
	StopGroup bool    `json:"stop_group,omitempty"`
	User      string  `json:"user,omitempty"`
	Memory    int64   `json:"memory,omitempty"`
	CPUs      float64 `json:"cpus,omitempty"`
	// Placement says which nodes may run the accessory (swarm only); it
	// is pinned to one of them, where its volumes stay.
	Placement *Placement `json:"placement,omitempty"`
}

// Placement is where a cluster runtime (swarm) may run an instance.
type Placement struct {
	// Constraints are Swarm placement constraints, all of which a node
	// must meet: node.role==worker, node.hostname!=db1,
	// node.labels.zone==a, engine.labels.gpu==true.
	Constraints []string `json:"constraints,omitempty"`
	// Spread spreads replicas evenly over the values of a node label,
	// e.g. node.labels.zone.
	Spread string `json:"spread,omitempty"`
}

// VolumeMount mounts a named volume (or, docker only, a host path when
// Name starts with "/" or ".") at Path.
type VolumeMount struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Volume is named persistent storage shared by services.
type Volume struct {
	Name     string   `json:"name"`
	Mount    string   `json:"mount"`              // absolute path inside the app (e.g. /app/data)
	Services []string `json:"services,omitempty"` // empty: every service, release task and check
	// Driver and DriverOpts create the volume with a Docker volume driver
	// (docker and swarm), e.g. driver: local with driver_opts for NFS.
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
}

// Backups schedules backups inside the server.
type Backups struct {
	Schedule string `json:"schedule"`     // 5-field cron expression, server local time
	Keep     int    `json:"keep"`         // archives kept per volume or accessory
	To       string `json:"to,omitempty"` // directory on the server; default <data-dir>/backups/<app>
}

// Signal is a stop signal, written in YAML as SIGTERM, TERM or 15.
type Signal syscall.Signal

// ServiceNames returns the service names, routed services first, then by name.
func (s *Spec) ServiceNames() []string {
	names := make([]string, 0, len(s.Services))
	for n := range s.Services {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := s.Services[names[i]], s.Services[names[j]]
		if a.Routed() != b.Routed() {
			return a.Routed()
		}
		return names[i] < names[j]
	})
	return names
}

// AccessoryNames returns the accessory names in order.
func (s *Spec) AccessoryNames() []string {
	names := make([]string, 0, len(s.Accessories))
	for n := range s.Accessories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SecretNames returns every secret name the spec declares, at the top
// level and by its accessories, sorted, each once.
func (s *Spec) SecretNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	add(s.Secrets)
	for _, n := range s.AccessoryNames() {
		if a := s.Accessories[n]; a != nil {
			add(a.Secrets)
		}
	}
	sort.Strings(out)
	return out
}

// VolumesFor returns the volumes mounted into service svc ("" = a release
// task or check, which gets every volume).
// FilesFor returns the upload's directories mounted into service svc's
// instances, or for svc "" (release tasks, checks, one-offs) every
// service's, each target once.
func (s *Spec) FilesFor(svc string) []VolumeMount {
	if svc != "" {
		if x := s.Services[svc]; x != nil {
			return x.Files
		}
		return nil
	}
	var out []VolumeMount
	seen := map[string]bool{}
	names := make([]string, 0, len(s.Services))
	for n := range s.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if s.Services[n] == nil {
			continue
		}
		for _, m := range s.Services[n].Files {
			if !seen[m.Path] {
				seen[m.Path] = true
				out = append(out, m)
			}
		}
	}
	return out
}

func (s *Spec) VolumesFor(svc string) []*Volume {
	var out []*Volume
	names := make([]string, 0, len(s.Volumes))
	for n := range s.Volumes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := s.Volumes[n]
		if svc == "" || len(v.Services) == 0 {
			out = append(out, v)
			continue
		}
		for _, x := range v.Services {
			if x == svc {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// VolumeEnv names the variable that holds volume name's path in an
// instance: MOORAGE_VOLUME_<NAME>, upper case, dashes as underscores.
func VolumeEnv(name string) string {
	return "MOORAGE_VOLUME_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}
