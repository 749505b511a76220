package api

import "time"

// The wire types of operations and app state: the engine emits and
// returns these (internal/engine aliases them), and clients read them.

// Event types streamed while an operation runs.
const (
	EventPlan     = "plan"      // Text: the plan
	EventStep     = "step"      // a step started
	EventStepDone = "step_done" // a step ended: Outcome, Duration
	EventOutput   = "output"    // a line of output of the running step
	EventInfo     = "info"
	EventWarn     = "warn"
	EventError    = "error" // Text: what failed; Logs: the failing instance's last lines
	EventDone     = "done"  // last event: Status, Text, Code
)

// Codes of a done event that failed for a reason a client may act on.
const (
	CodeLocked = "locked" // another operation holds the app's lock: retry with --wait
)

// Event is one thing that happened during an operation.
type Event struct {
	Time     time.Time     `json:"time"`
	Type     string        `json:"type"`
	Deploy   int64         `json:"deploy,omitempty"`
	Release  string        `json:"release,omitempty"`
	Seq      int           `json:"seq,omitempty"`
	Step     string        `json:"step,omitempty"`
	Detail   string        `json:"detail,omitempty"`
	Outcome  string        `json:"outcome,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Text     string        `json:"text,omitempty"`
	Status   string        `json:"status,omitempty"`
	Code     string        `json:"code,omitempty"` // done: CodeLocked, ...
	Instance string        `json:"instance,omitempty"`
	Logs     []string      `json:"logs,omitempty"`
	// Steps: a plan event's steps, one by one (Text holds the whole plan).
	Steps []PlanStep `json:"steps,omitempty"`
}

// PlanStep is one step of a plan as events carry it: its kind, the
// release it acts on, and the line the plan prints (and the journal
// records) for it.
type PlanStep struct {
	Kind    string `json:"kind"`
	Release string `json:"release,omitempty"`
	Text    string `json:"text"`
}

// ConfigVar is a config value as `moorage config` lists it: a secret's
// value is never returned.
type ConfigVar struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// Maintenance is an app's maintenance mode.
type Maintenance struct {
	Message string `json:"message,omitempty"`
	HTML    string `json:"html,omitempty"` // a whole custom page
	// Stopped: set by `moorage stop`; recovery keeps the app's services
	// stopped and `moorage start` runs them again.
	Stopped bool `json:"stopped,omitempty"`
	// Destroying: set by `moorage apps destroy` before it removes
	// anything (with Stopped); recovery starts nothing of the app, and
	// every operation but destroy is refused until a destroy finishes.
	Destroying bool `json:"destroying,omitempty"`
}

// PrunedArtifact is an artifact prune removed (or would remove).
type PrunedArtifact struct {
	Release string `json:"release"`
	Ref     string `json:"ref"`
	Bytes   int64  `json:"bytes,omitempty"` // 0 when unknown (images)
}

// PruneReport says what a prune freed.
type PruneReport struct {
	Artifacts []PrunedArtifact `json:"artifacts"`
	LogBytes  int64            `json:"log_bytes"`
	DryRun    bool             `json:"dry_run,omitempty"`
}

// RuntimeHealth is one runtime's state as the server sees it now.
type RuntimeHealth struct {
	Name      string `json:"name"`
	OK        bool   `json:"ok"`
	Instances int    `json:"instances"`       // what it runs for every app
	Error     string `json:"error,omitempty"` // why it does not answer
}

// Instance is an instance a runtime reports.
type Instance struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Service string `json:"service"`
	Release string `json:"release"`
	Index   int    `json:"index"`
	Kind    string `json:"kind"` // InstanceService, InstanceAccessory or InstanceTask
	Hash    string `json:"hash,omitempty"`

	State string `json:"state"` // InstanceRunning, InstanceRestarting or InstanceExited
	// Addr is host:port where the server reaches the instance's port.
	Addr string `json:"addr,omitempty"`
	// Host and Port are how other instances of the app reach it.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`

	// Node is the machine the instance runs on (swarm: the node's
	// hostname); "" on single-host runtimes.
	Node string `json:"node,omitempty"`
	// Unreachable is set when the instance's machine is down, so that its
	// state cannot be known.
	Unreachable bool `json:"unreachable,omitempty"`

	// Paused is set while a running instance is frozen.
	Paused bool `json:"paused,omitempty"`

	// Health is the image's own health check status when it has one:
	// "starting", "healthy" or "unhealthy". InstanceStatus's Health
	// hides it on the wire.
	Health string `json:"health,omitempty"`

	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at"` // last (re)start
	Restarts  int       `json:"restarts"`
	ExitCode  int       `json:"exit_code"` // last exit; -1 when killed by a signal
}

// Instance kinds (Instance.Kind; internal/runtime's Kind).
const (
	InstanceService   = "service"   // a replica of a service of a release
	InstanceAccessory = "accessory" // a long-lived dependency; Release is ""
	InstanceTask      = "task"      // a one-off: release task, check, `moorage run`
)

// Instance states (Instance.State; internal/runtime's State).
const (
	InstanceRunning    = "running"    // the process is up
	InstanceRestarting = "restarting" // it crashed; the runtime restarts it after a backoff
	InstanceExited     = "exited"     // stopped, or gone while nobody supervised it
)

// InstanceStatus is an instance as `moorage ps` shows it.
type InstanceStatus struct {
	Instance
	Runtime string `json:"runtime"`
	Routed  bool   `json:"routed"`
	// Health is "healthy", "unhealthy" (with LastError) or "" when the proxy
	// does not check it.
	Health    string `json:"health,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// WarmUntil, for a web instance of the release the active one
	// replaced: it runs unrouted until then (deploy.keep_warm), and a
	// rollback to its release serves from it at once.
	WarmUntil time.Time `json:"warm_until,omitzero"`
}

// AppStatus is an app's state.
type AppStatus struct {
	App       string           `json:"app"`
	Runtime   string           `json:"runtime"`
	Active    string           `json:"active,omitempty"`
	Cause     string           `json:"cause,omitempty"`
	Since     time.Time        `json:"since,omitempty"`
	Formation map[string]int   `json:"formation,omitempty"`
	Instances []InstanceStatus `json:"instances"`
	Lock      *Lock            `json:"lock,omitempty"`
	Events    []AppEvent       `json:"events,omitempty"` // recent crashes and errors
	// Backups is the latest backup of each volume and accessory: a failed
	// one shows here until a later one succeeds.
	Backups []BackupStatus `json:"backups,omitempty"`
	// Maintenance is set while the app is in maintenance mode.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// StoppedAccessories were stopped with `moorage accessory stop`.
	StoppedAccessories []string `json:"stopped_accessories,omitempty"`
}

// Lock is the lock an operation holds on an app. Its fields go on the wire
// under their Go names.
type Lock struct {
	App         string    `json:"App"`
	Owner       string    `json:"Owner"`     // who: "alice@laptop (pid 123)"
	Operation   string    `json:"Operation"` // what: "deploy v7", "rollback to v3"
	DeployID    int64     `json:"DeployID"`
	Server      string    `json:"Server"` // the server process holding it
	AcquiredAt  time.Time `json:"AcquiredAt"`
	HeartbeatAt time.Time `json:"HeartbeatAt"`
}

// Kinds of app event (AppEvent.Kind, internal/store's AppEvent.Kind). A
// crash and a restart are the instance events of the same names that a
// runtime reports (internal/runtime's EventCrash, EventRestart), recorded.
const (
	AppEventCrash    = "crash"   // an instance exited without being asked; it will be restarted
	AppEventRestart  = "restart" // the runtime restarted it
	AppEventDeploy   = "deploy"
	AppEventRollback = "rollback"
	AppEventRecover  = "recover"
	AppEventScale    = "scale"
	AppEventBackup   = "backup"
	AppEventError    = "error" // something failed outside an operation (recovery)
)

// AppEvent is something that happened to an app outside an operation's
// stream: a crash, an error, a backup, a recovery (internal/store's
// AppEvent). Its fields go on the wire under their Go names.
type AppEvent struct {
	ID       int64     `json:"ID"`
	App      string    `json:"App"`
	Time     time.Time `json:"Time"`
	Kind     string    `json:"Kind"` // AppEventCrash, AppEventError, AppEventBackup, ...
	Instance string    `json:"Instance"`
	Message  string    `json:"Message"`
}

// BackupStatus is the latest backup of one volume or accessory.
type BackupStatus struct {
	Kind    string    `json:"kind"`
	Target  string    `json:"target"`
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	Trigger string    `json:"trigger"`
	Time    time.Time `json:"time"`
}

// StatusPlanned is how a dry run ends: its plan was printed, nothing
// changed.
const StatusPlanned = "planned"
