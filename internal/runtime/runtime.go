// Package runtime defines the seam between the deploy engine and what runs
// instances: plain processes (runtime/process) or containers
// (runtime/docker). Every implementation passes the conformance suite in
// runtime/runtimetest.
//
// A runtime owns supervision: an instance started with Start keeps running
// until Stop, and when it crashes the runtime restarts it with exponential
// backoff and reports the crash on Events. A runtime survives the server:
// Close never stops instances, and a runtime opened again on the same state
// re-adopts what is still running (and reports, through List, what exited
// meanwhile).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/spec"
)

// Sentinel errors.
var (
	ErrNotFound      = errors.New("instance not found")
	ErrExists        = errors.New("instance already exists")
	ErrBuild         = errors.New("build failed")
	ErrNotSupported  = errors.New("not supported by this runtime")
	ErrArtifactGone  = errors.New("artifact no longer exists")
	ErrTimeout       = errors.New("timed out")
	ErrInvalidSpec   = errors.New("invalid instance spec")
	ErrRuntimeClosed = errors.New("runtime closed")
)

// Kind says what an instance is for.
type Kind string

// Instance kinds (the wire's, internal/api).
const (
	KindService   Kind = api.InstanceService   // a replica of a service of a release
	KindAccessory Kind = api.InstanceAccessory // a long-lived dependency; Release is ""
	KindTask      Kind = api.InstanceTask      // a one-off: release task, check, `moorage run`
)

// State is an instance's observed state.
type State string

// Instance states (the wire's, internal/api).
const (
	StateRunning    State = api.InstanceRunning    // the process is up
	StateRestarting State = api.InstanceRestarting // it crashed; the runtime restarts it after a backoff
	StateExited     State = api.InstanceExited     // stopped, or gone while nobody supervised it
)

// Artifact is what a release runs: a release directory (process) or an
// image (docker).
type Artifact struct {
	Runtime string `json:"runtime"`
	// Ref is the release directory (process) or the image reference (docker).
	Ref string `json:"ref"`
	// Workdir is where the app lives inside the artifact (spec build.workdir).
	Workdir string `json:"workdir,omitempty"`
	// User is the image's configured user (docker), "" when unknown or none.
	User string `json:"user,omitempty"`
	// Healthcheck says the image defines a HEALTHCHECK (docker): services
	// without a health check of their own are gated on it.
	Healthcheck bool `json:"healthcheck,omitempty"`
	// HealthcheckWait is how long a new instance may take before that
	// HEALTHCHECK reports it healthy, derived from the check's own start
	// period, interval, timeout and retries.
	HealthcheckWait time.Duration `json:"healthcheck_wait,omitempty"`
	// Files names the release whose copies of the upload's "./dir" host
	// paths accessories mount read-only (docker); "" when there are none.
	Files string `json:"files,omitempty"`
}

// BuildRequest asks for the artifact of a new release.
type BuildRequest struct {
	App     string
	Release string // "v7"
	// ContextDir holds the unpacked upload. The runtime may move it (process:
	// it becomes the release directory) or remove it once built.
	ContextDir string
	Spec       *spec.Spec
	// Env is the app's environment for build.command (its env and config
	// values, never secrets), on top of the few variables of the server's
	// environment that runtime.BuildEnv passes.
	Env map[string]string
	// Output receives build output (build.command, image build) line by line.
	Output io.Writer
}

// Mount mounts a named volume at Target (an absolute path inside the app,
// for example /app/data). A Name starting with "/" or "." is a host path
// (docker bind mount).
type Mount struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	// Driver and DriverOpts create the volume with a volume driver (swarm:
	// a volume every node mounts, such as NFS through the local driver's
	// type/o/device options). Empty: a local volume.
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
}

// InstanceSpec describes an instance to start.
type InstanceSpec struct {
	App     string `json:"app"`
	Service string `json:"service"` // service name, accessory name, or task label
	Release string `json:"release"` // "v7"; "" for accessories
	Index   int    `json:"index"`   // 1-based replica index; 0 for accessories and tasks
	Kind    Kind   `json:"kind"`

	Artifact Artifact `json:"artifact"`
	// Image is used instead of Artifact for accessories (docker).
	Image string `json:"image,omitempty"`
	// Command is the unexpanded argv. The runtime expands $VAR and ${VAR}
	// from the final environment (after setting PORT) just before exec.
	// Empty: the image's default command (docker).
	Command []string `json:"command,omitempty"`
	// Env is the app env + config + secrets + service env. The runtime adds
	// PORT, MOORAGE_APP, MOORAGE_SERVICE, MOORAGE_RELEASE, MOORAGE_INSTANCE
	// and MOORAGE_VOLUME_<NAME> for each mount.
	Env map[string]string `json:"-"` // never serialized by the engine: may hold secrets
	// Port is the port the instance listens on. Process runtime: 0 means
	// "pick a free port" (passed as $PORT, kept across restarts); non-zero
	// is used as is. Docker: the container port (also $PORT), published on
	// 127.0.0.1 at an ephemeral host port when Publish is set.
	Port    int  `json:"port,omitempty"`
	Publish bool `json:"publish,omitempty"`

	Mounts      []Mount        `json:"mounts,omitempty"`
	StopSignal  syscall.Signal `json:"stop_signal"`
	StopTimeout time.Duration  `json:"stop_timeout"`
	// StopGroup (process runtime): StopSignal goes to the whole process
	// group. Otherwise it goes to the main process only (as docker and
	// systemd's KillMode=mixed do); when StopTimeout expires, the group
	// gets SIGKILL either way.
	StopGroup bool `json:"stop_group,omitempty"`

	// User runs the instance as this user ("name", "uid", "uid:gid").
	// Empty: docker, the image's user; process, the app's own unprivileged
	// user when the server runs as root (see the process package).
	User string `json:"user,omitempty"`
	// AllowRoot: with no User, the process runtime runs the instance as
	// the server's user, root included, instead of the app's user.
	AllowRoot bool `json:"allow_root,omitempty"`
	// Docker-only; the process runtime ignores them.
	ReadOnly bool    `json:"read_only,omitempty"`
	Memory   int64   `json:"memory,omitempty"`
	CPUs     float64 `json:"cpus,omitempty"`

	// Health is the check the engine gates the instance on, and
	// HealthHost the Host header its HTTP check sends (the route's
	// canonical host, as the engine's and the proxy's probes send it). A
	// runtime whose cluster probes instances itself (kubernetes) makes them
	// the cluster's readiness and startup probes, so that the cluster's
	// view of the instance agrees with moorage's; the others ignore them,
	// as the engine probes. Docker uses the image's HEALTHCHECK when the
	// spec has none.
	Health     *spec.Health `json:"health,omitempty"`
	HealthHost string       `json:"health_host,omitempty"`

	// Single marks an instance that must never run twice at once (a
	// singleton service). Runtimes that place instances on several
	// machines (swarm) pin it to one, so that the cluster never starts a
	// second copy by itself, for example during a network partition.
	Single bool `json:"single,omitempty"`
	// Placement constrains where a cluster runtime (swarm) runs the
	// instance; the others ignore it.
	Placement *Placement `json:"placement,omitempty"`

	// Hash is opaque to the runtime; it is stored with the instance and
	// reported by List (the engine uses it to see whether an accessory's spec
	// changed).
	Hash string `json:"hash,omitempty"`
}

// Placement is where a cluster may run an instance: constraints such as
// "node.labels.zone==east" or "node.role==worker" that must all hold, and
// spread preferences over a node label ("node.labels.zone").
type Placement struct {
	Constraints []string `json:"constraints,omitempty"`
	Spread      []string `json:"spread,omitempty"`
}

// ID returns the instance's name, unique within a runtime.
func (s *InstanceSpec) ID() string {
	return InstanceID(s.App, s.Service, s.Release, s.Index, s.Kind)
}

// InstanceID names an instance: "app-service-v3-1" for a service replica,
// "app-db" for an accessory, "app-release-v3-1" style for tasks (the caller
// picks a unique Service label for tasks).
func InstanceID(app, service, release string, index int, kind Kind) string {
	switch {
	case kind == KindAccessory:
		return fmt.Sprintf("%s-%s", app, service)
	case release == "":
		return fmt.Sprintf("%s-%s-%d", app, service, index)
	default:
		return fmt.Sprintf("%s-%s-%s-%d", app, service, release, index)
	}
}

// Instance is an observed instance.
type Instance struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Service string `json:"service"`
	Release string `json:"release"`
	Index   int    `json:"index"`
	Kind    Kind   `json:"kind"`
	Hash    string `json:"hash,omitempty"`

	State State `json:"state"`
	// Addr is host:port where the server reaches the instance's Port
	// (process: 127.0.0.1:$PORT; docker: the published 127.0.0.1 port).
	Addr string `json:"addr,omitempty"`
	// Host and Port are how other instances of the app reach it (accessories:
	// docker "db":5432 on the app network, process 127.0.0.1:port).
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`

	// Node is the machine the instance runs on (swarm: the node's
	// hostname); "" on single-host runtimes.
	Node string `json:"node,omitempty"`
	// Unreachable is set when the instance's machine is down, so that its
	// state cannot be known (swarm: a task on a node the manager marked
	// down). A singleton there may still be running.
	Unreachable bool `json:"unreachable,omitempty"`

	// Paused is set while a running instance is frozen by Pause (its
	// process stopped; docker paused).
	Paused bool `json:"paused,omitempty"`

	// Health is the image's own health check status when it has one
	// (docker HEALTHCHECK): "starting", "healthy" or "unhealthy".
	Health string `json:"health,omitempty"`

	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at"` // last (re)start
	Restarts  int       `json:"restarts"`
	ExitCode  int       `json:"exit_code"` // last exit; -1 when killed by a signal
}

// Filter selects instances in List. Empty fields match everything.
type Filter struct {
	App     string
	Service string
	Release string
	Kind    Kind
}

// Match reports whether in matches f.
func (f Filter) Match(in Instance) bool {
	return (f.App == "" || f.App == in.App) &&
		(f.Service == "" || f.Service == in.Service) &&
		(f.Release == "" || f.Release == in.Release) &&
		(f.Kind == "" || f.Kind == in.Kind)
}

// RunSpec describes a one-off instance (Kind is KindTask).
type RunSpec struct {
	InstanceSpec
	Timeout time.Duration // 0: no timeout beyond ctx
	TTY     bool          // allocate a terminal (interactive `moorage run`)
	// Size is the terminal's size at the start (zero: unknown), and
	// Resize its changes while the command runs (nil: none); both only
	// with TTY.
	Size   TermSize
	Resize <-chan TermSize
	Stdin  io.Reader // nil: no input
	Stdout io.Writer
	Stderr io.Writer // may equal Stdout; ignored with TTY
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Cols, Rows uint16 }

// Zero reports whether the size is unknown.
func (s TermSize) Zero() bool { return s.Cols == 0 || s.Rows == 0 }

// LogOptions select log lines.
type LogOptions struct {
	Tail   int       // last N lines; 0 = all
	Since  time.Time // zero = from the start
	Follow bool      // keep streaming until ctx is done (or the instance is removed)
}

// LogRetention says which logs PruneLogs keeps.
type LogRetention struct {
	MaxAge   time.Duration // 0: no age limit
	MaxBytes int64         // 0: no size limit
	// Keep reports instances whose logs are never deleted (the running
	// ones); their rotated files still count towards MaxBytes.
	Keep func(id string) bool
}

// ExecSpec is a command run inside a running instance.
type ExecSpec struct {
	Cmd    []string
	Env    map[string]string // added to the instance's environment
	Stdin  io.Reader         // nil: no input
	Stdout io.Writer         // nil: discarded
	Stderr io.Writer         // nil: discarded; may equal Stdout
}

// LogLine is one line an instance printed.
type LogLine struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"` // "stdout" or "stderr"
	Text     string    `json:"text"`
}

// EventType says what happened to an instance.
type EventType string

// Instance event types. A crash and a restart are recorded as the app
// events of the same kinds (internal/api's AppEventCrash, AppEventRestart).
const (
	EventCrash   EventType = api.AppEventCrash   // exited without being asked; will be restarted
	EventRestart EventType = api.AppEventRestart // restarted after a crash
	EventExit    EventType = "exit"              // exited after Stop, or a one-off finished
)

// InstanceEvent reports an instance's state change.
type InstanceEvent struct {
	Time     time.Time `json:"time"`
	Type     EventType `json:"type"`
	Instance string    `json:"instance"`
	App      string    `json:"app"`
	Service  string    `json:"service"`
	Release  string    `json:"release"`
	Kind     Kind      `json:"kind"`
	ExitCode int       `json:"exit_code"`
	Message  string    `json:"message,omitempty"` // "exit status 2", "killed by SIGSEGV", "OOM"
	Restarts int       `json:"restarts"`
	Backoff  time.Duration
}

// Runtime runs instances. All methods are safe for concurrent use.
type Runtime interface {
	// Name is "process" or "docker".
	Name() string

	// Build makes the artifact of a release from an uploaded context.
	Build(ctx context.Context, req BuildRequest) (Artifact, error)
	// RemoveArtifact deletes an artifact no release will need again.
	RemoveArtifact(ctx context.Context, a Artifact) error
	// ArtifactExists reports whether a can still be started.
	ArtifactExists(ctx context.Context, a Artifact) (bool, error)

	// EnsureVolume creates the named volume of app if it does not exist.
	EnsureVolume(ctx context.Context, app, name string) error
	// VolumePath is the host directory holding a volume's data (backups
	// read and restore it there).
	VolumePath(ctx context.Context, app, name string) (string, error)
	// EnsureNetwork creates what lets app's instances reach each other
	// (docker: a network; process: nothing).
	EnsureNetwork(ctx context.Context, app string) error

	// Start starts a supervised instance and returns once it is running
	// (not necessarily ready). It fails with ErrExists when an instance
	// with the same ID exists (running or not).
	Start(ctx context.Context, s InstanceSpec) (Instance, error)
	// Stop stops an instance gracefully: its stop signal, then after its stop
	// timeout SIGKILL (to the whole process group). It returns once the
	// instance has exited. No restart follows. Stopping an exited instance
	// is a no-op.
	Stop(ctx context.Context, id string) error
	// Remove deletes a stopped instance (its logs are kept). A running
	// instance is stopped first.
	Remove(ctx context.Context, id string) error
	// List returns the instances that match f, running or not.
	List(ctx context.Context, f Filter) ([]Instance, error)
	// Exec runs a command in a running instance's environment, as its user
	// (command health checks, pg_dump in an accessory), and returns its
	// exit code.
	Exec(ctx context.Context, id string, e ExecSpec) (int, error)
	// Pause freezes every process of a running instance (SIGSTOP of its
	// process group; docker pause) and Resume thaws it: backups use them to
	// copy a volume nothing writes to.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Run runs a one-off instance to completion, streaming its output, and
	// returns its exit code. It is removed afterwards. Cancelling ctx kills it.
	Run(ctx context.Context, s RunSpec) (int, error)

	// Logs calls fn for each matching line of instance id, in order. With
	// Follow it keeps going until ctx is done. Logs of removed instances stay
	// readable until pruned.
	Logs(ctx context.Context, id string, opts LogOptions, fn func(LogLine) error) error

	// PruneLogs deletes log files of app's instances that are not kept:
	// those older than MaxAge, then the oldest until the app's logs fit in
	// MaxBytes. It returns the bytes freed.
	PruneLogs(ctx context.Context, app string, r LogRetention) (int64, error)

	// Events streams instance events until ctx is done.
	Events(ctx context.Context) <-chan InstanceEvent

	// Close releases the runtime's resources. Instances keep running.
	Close() error
}

// LostStopper is implemented by runtimes whose instances can be on a
// machine that is down (Instance.Unreachable: swarm). StopLost tells such
// an instance to stop when its machine is back and returns at once: its
// stop cannot be confirmed, so it is not waited for (Stop would wait, and
// fail after its timeout). Nothing replaces it meanwhile.
type LostStopper interface {
	StopLost(ctx context.Context, id string) error
}

// VolumeRemover is implemented by runtimes that can delete a volume and its
// data (an explicit operator command; deploys never do).
type VolumeRemover interface {
	RemoveVolume(ctx context.Context, app, name string) error
}

// AppDataRemover is implemented by runtimes that keep more of an app's data
// than its volumes (the process runtime: its accessories' working
// directories). RemoveAppData deletes it all, once the app's instances are
// gone (`moorage apps destroy --volumes`), and returns what it deleted.
type AppDataRemover interface {
	RemoveAppData(ctx context.Context, app string) ([]string, error)
}

// ArtifactSizer is implemented by runtimes that can tell an artifact's size
// (what pruning it frees).
type ArtifactSizer interface {
	ArtifactSize(ctx context.Context, a Artifact) (int64, error)
}

// VolumeArchiver is implemented by runtimes whose volumes are not
// directories of the server (swarm: a volume lives on a node). Volume
// backups read and restore a volume through it instead of VolumePath.
type VolumeArchiver interface {
	// ArchiveVolume returns app's volume name as an uncompressed tar
	// stream whose entries sit under one top directory (the Docker API's
	// archive of a path), and where it is read from ("node2"). Closing
	// the stream cleans up what reading it needed.
	ArchiveVolume(ctx context.Context, app, name string) (content io.ReadCloser, where string, err error)
	// ReplaceVolume replaces the volume's content with content, a tar
	// stream (gzip or not) of entries relative to the volume's root,
	// numeric owners kept, and says where. Nothing may run with the
	// volume mounted.
	ReplaceVolume(ctx context.Context, app, name string, content io.Reader) (where string, err error)
}
