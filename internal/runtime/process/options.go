package process

import (
	"log/slog"
	"time"
)

// Defaults for Options.
const (
	defaultStopTimeout = 10 * time.Second
)

// pollInterval is how often the runtime looks for new instance events.
const pollInterval = 100 * time.Millisecond

// Options configure a process runtime.
type Options struct {
	// DataDir is the server's data directory (see the package doc).
	DataDir string
	Logger  *slog.Logger
	// LogMaxSize rotates an instance's log at this size (default 10 MiB).
	LogMaxSize int64
	// LogMaxFiles is how many rotated log files are kept (default 5).
	LogMaxFiles int
	// BackoffMin and BackoffMax bound the delay before a crashed instance
	// is restarted (defaults 500ms and 30s). The delay doubles with each
	// consecutive crash and goes back to BackoffMin once the process stayed
	// up BackoffReset (default 10s).
	BackoffMin, BackoffMax, BackoffReset time.Duration
	// PortMin and PortMax bound the ports picked for instances started
	// with Port 0 (default: the 10000 ports below the kernel's ephemeral
	// range, so that no outgoing connection takes the port of an instance
	// while it restarts).
	PortMin, PortMax int
	// AppUsers: when the server runs as root, an instance with no `user:`
	// and no `allow_root` runs as its app's own unprivileged user, created
	// on first use, and the app's directories are closed to other apps
	// (see appuser.go). The server sets it; off, instances run as the
	// server's user unless their spec names one.
	AppUsers bool
	// Executable is the binary started as the shim (default
	// os.Executable()); it must call MaybeRunShim first thing.
	Executable string
}
