package docker

import (
	"errors"
	"log/slog"
	"time"
)

// ErrUnavailable is returned by New when no Docker Engine answers.
var ErrUnavailable = errors.New("docker engine not available")

// DefaultPrefix is the default of Options.Prefix.
const DefaultPrefix = "moorage"

// Builders for Options.Builder.
const (
	// BuilderAuto uses BuildKit through the docker CLI when a CLI that can
	// is found (with buildx, or an older one with BuildKit built in), else
	// the Engine API's builder.
	BuilderAuto = ""
	// BuilderCLI always builds with the docker CLI (BuildKit).
	BuilderCLI = "cli"
	// BuilderAPI always builds with the Engine API's (classic) builder.
	BuilderAPI = "api"
)

// Options configure a docker runtime.
type Options struct {
	// DataDir is the server's data directory: logs go to
	// DataDir/logs/<app>/<instance-id>.log like the process runtime's.
	DataDir string
	Logger  *slog.Logger
	// Prefix names and labels everything the runtime creates (default
	// "moorage"); two servers on one engine need different prefixes.
	Prefix string
	// Host is the engine's address (DOCKER_HOST); "" uses the environment,
	// else the default socket.
	Host string

	// Builder picks how images are built: BuilderAuto, BuilderCLI or
	// BuilderAPI.
	Builder string
	// CLI is the docker CLI for BuildKit builds (default: "docker" in
	// PATH).
	CLI string
	// CheckFiles, when set, checks the "./dir" host paths a release
	// mounts (see keepFiles) in the upload at root, before they are kept
	// and before the image is built: a runtime that cannot mount some of
	// them (swarm: each file becomes a Swarm config, of limited size)
	// fails the build early, naming the file.
	CheckFiles func(root string, paths []string) error

	// LogMaxSize rotates an instance's log at this size (default 10 MiB).
	LogMaxSize int64
	// LogMaxFiles is how many rotated log files are kept (default 5).
	LogMaxFiles int
	// BackoffMin and BackoffMax bound the delay before a crashed container
	// is restarted (defaults 500ms and 30s). The delay doubles with each
	// consecutive crash and goes back to BackoffMin once the container
	// stayed up BackoffReset (default 10s).
	BackoffMin, BackoffMax, BackoffReset time.Duration
}
