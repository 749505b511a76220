//go:build linux

package process

import (
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// Files of an instance's state directory, DataDir/runtime/process/instances/<id>.
const (
	recordFile = "instance.json" // written once by Start: the spec without Env
	stateFile  = "state.json"    // rewritten by the shim on every change
	eventsFile = "events.jsonl"  // append-only; one runtime.InstanceEvent per line
	shimLog    = "shim.log"      // the shim's own stderr
)

// record is what Start writes for an instance. It never holds the
// environment (secrets live only in the shim's and the child's memory).
type record struct {
	Spec    runtime.InstanceSpec `json:"spec"` // Env is never serialized
	Port    int                  `json:"port"`
	Dir     string               `json:"dir"` // the child's working directory
	Log     string               `json:"log"` // the log file
	Created time.Time            `json:"created"`
}

// shimState is what the shim reports about itself and its child.
type shimState struct {
	ShimPID   int    `json:"shim_pid"`
	ShimStart uint64 `json:"shim_start"` // /proc/<pid>/stat starttime
	PID       int    `json:"pid"`        // the child; 0 while restarting or exited
	PIDStart  uint64 `json:"pid_start"`
	PGID      int    `json:"pgid"`

	State     runtime.State `json:"state"`
	Restarts  int           `json:"restarts"`
	ExitCode  int           `json:"exit_code"`
	Message   string        `json:"message,omitempty"`
	StartedAt time.Time     `json:"started_at"`
	Stopped   bool          `json:"stopped,omitempty"` // the exit was requested
	Updated   time.Time     `json:"updated"`
}

// shimConfig is what the runtime hands a new shim through a pipe. It holds
// the environment, so it is never written to disk.
type shimConfig struct {
	ID       string                `json:"id"`
	StateDir string                `json:"state_dir"`
	Event    runtime.InstanceEvent `json:"event"` // identity fields for the events

	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	Port int      `json:"port"`
	// Credential runs the child as another user (spec `user:`, server as root).
	Credential *syscall.Credential `json:"credential,omitempty"`

	Log         string `json:"log"`
	LogMaxSize  int64  `json:"log_max_size"`
	LogMaxFiles int    `json:"log_max_files"`

	StopSignal   syscall.Signal `json:"stop_signal"`
	StopTimeout  time.Duration  `json:"stop_timeout"`
	StopGroup    bool           `json:"stop_group,omitempty"`
	BackoffMin   time.Duration  `json:"backoff_min"`
	BackoffMax   time.Duration  `json:"backoff_max"`
	BackoffReset time.Duration  `json:"backoff_reset"`
}

// shimResult is the shim's answer once the first start succeeded or failed.
type shimResult struct {
	PID   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// taskRecord marks a running one-off (Run) so that a server restarted
// after a crash can kill it.
type taskRecord struct {
	ID        string    `json:"id"`
	PID       int       `json:"pid"`
	PIDStart  uint64    `json:"pid_start"`
	PGID      int       `json:"pgid"`
	SID       int       `json:"sid"`
	ServerPID int       `json:"server_pid"`
	Started   time.Time `json:"started"`
}

// exitMessage describes how a process ended: "exit status 2",
// "killed by SIGKILL".
func exitMessage(ws syscall.WaitStatus) (code int, msg string) {
	switch {
	case ws.Signaled():
		return -1, "killed by " + signalName(ws.Signal())
	case ws.Exited():
		return ws.ExitStatus(), "exit status " + strconv.Itoa(ws.ExitStatus())
	default:
		return -1, "exited"
	}
}

func (r *Runtime) instanceDir(id string) string { return filepath.Join(r.instDir, id) }
