package compose

import (
	"fmt"
	"time"
)

// The moorage.yaml written from a compose project, field by field in the
// order docs/spec.md lists them. It is marshalled to YAML and then parsed
// with spec.Parse like any hand-written spec, so both `init --from` and
// `deploy -f` go through the same validation.

type outSpec struct {
	App         string                `yaml:"app"`
	Runtime     string                `yaml:"runtime"`
	Image       string                `yaml:"image,omitempty"`
	Build       *outBuild             `yaml:"build,omitempty"`
	Env         map[string]string     `yaml:"env,omitempty"`
	Secrets     []string              `yaml:"secrets,omitempty"`
	Release     []outTask             `yaml:"release,omitempty"`
	Checks      []outTask             `yaml:"checks,omitempty"`
	Services    map[string]*outSvc    `yaml:"services"`
	Accessories map[string]*outAccess `yaml:"accessories,omitempty"`
	Volumes     map[string]*outVolume `yaml:"volumes,omitempty"`
	Deploy      *outDeploy            `yaml:"deploy,omitempty"`
	Backups     *outBackups           `yaml:"backups,omitempty"`
}

type outBuild struct {
	Dockerfile string            `yaml:"dockerfile,omitempty"`
	Target     string            `yaml:"target,omitempty"`
	Args       map[string]string `yaml:"args,omitempty"`
}

type outTask struct {
	Command []string `yaml:"command,flow"`
	Timeout string   `yaml:"timeout,omitempty"`
}

type outSvc struct {
	Command     []string          `yaml:"command,omitempty,flow"`
	Replicas    *int              `yaml:"replicas,omitempty"`
	Singleton   bool              `yaml:"singleton,omitempty"`
	Env         map[string]string `yaml:"env,omitempty"`
	Port        int               `yaml:"port,omitempty"`
	HTTP        *outHTTP          `yaml:"http,omitempty"`
	Health      *outHealth        `yaml:"health,omitempty"`
	MinReady    string            `yaml:"min_ready,omitempty"`
	StopSignal  string            `yaml:"stop_signal,omitempty"`
	StopTimeout string            `yaml:"stop_timeout,omitempty"`
	User        string            `yaml:"user,omitempty"`
	ReadOnly    bool              `yaml:"read_only,omitempty"`
	Memory      string            `yaml:"memory,omitempty"`
	CPUs        string            `yaml:"cpus,omitempty"`
	AllowRoot   bool              `yaml:"allow_root,omitempty"`
	Files       []string          `yaml:"files,omitempty"`
}

type outHTTP struct {
	Hosts        []string `yaml:"hosts,omitempty,flow"`
	Path         string   `yaml:"path,omitempty"`
	TLS          string   `yaml:"tls,omitempty"`
	Canonical    string   `yaml:"canonical,omitempty"`
	HSTS         bool     `yaml:"hsts,omitempty"`
	MaxBody      string   `yaml:"max_body,omitempty"`
	HoldTimeout  string   `yaml:"hold_timeout,omitempty"`
	DrainTimeout string   `yaml:"drain_timeout,omitempty"`
}

type outHealth struct {
	Command     []string `yaml:"command,omitempty,flow"`
	TCP         bool     `yaml:"tcp,omitempty"`
	Interval    string   `yaml:"interval,omitempty"`
	Timeout     string   `yaml:"timeout,omitempty"`
	StartPeriod string   `yaml:"start_period,omitempty"`
	Retries     int      `yaml:"retries,omitempty"`
}

type outAccess struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command,omitempty,flow"`
	Env         map[string]string `yaml:"env,omitempty"`
	Secrets     []string          `yaml:"secrets,omitempty,flow"`
	Port        int               `yaml:"port"`
	Volumes     []string          `yaml:"volumes,omitempty"`
	Health      *outHealth        `yaml:"health,omitempty"`
	Backup      string            `yaml:"backup,omitempty"`
	StopSignal  string            `yaml:"stop_signal,omitempty"`
	StopTimeout string            `yaml:"stop_timeout,omitempty"`
	User        string            `yaml:"user,omitempty"`
	Memory      string            `yaml:"memory,omitempty"`
	CPUs        string            `yaml:"cpus,omitempty"`
}

type outVolume struct {
	Mount      string            `yaml:"mount"`
	Services   []string          `yaml:"services,omitempty,flow"`
	Driver     string            `yaml:"driver,omitempty"`
	DriverOpts map[string]string `yaml:"driver_opts,omitempty"`
}

type outDeploy struct {
	Monitor        string `yaml:"monitor,omitempty"`
	DrainTimeout   string `yaml:"drain_timeout,omitempty"`
	ReleaseTimeout string `yaml:"release_timeout,omitempty"`
	KeepReleases   int    `yaml:"keep_releases,omitempty"`
	KeepWarm       string `yaml:"keep_warm,omitempty"`
}

type outBackups struct {
	Schedule string `yaml:"schedule"`
	Keep     int    `yaml:"keep,omitempty"`
}

// fmtDuration writes d in the spec's duration format ("" for zero).
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
}
