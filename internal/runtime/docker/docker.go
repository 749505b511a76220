package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Runtime runs instances as containers. It implements runtime.Runtime.
type Runtime struct {
	opts     Options
	names    containers.Names // of containers, networks, volumes
	log      *slog.Logger
	cli      *client.Client
	stateDir string

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	life   seam.Life // Close shuts it, and waits for its goroutines
	events *runtime.Broker

	seam.Stopper // Stop: see stop

	builderOnce sync.Once
	builder     builder
	netMu       sync.Mutex // serializes EnsureNetwork

	mu    sync.Mutex
	sups  map[string]*supervisor // supervised containers by instance id
	tasks seam.Tasks             // Run in progress
	ids   seam.IDLocks
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to the Docker Engine (negotiating the API version) and
// re-adopts the containers of opts.Prefix: running ones are supervised
// again without a restart, one-offs a dead server left running are
// removed. It fails with an error wrapping ErrUnavailable when no engine
// answers.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if err := seam.Setup(Name, &opts.DataDir, &opts.Logger); err != nil {
		return nil, err
	}
	dataDir := opts.DataDir
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if err := containers.ValidPrefix(Name, opts.Prefix); err != nil {
		return nil, err
	}
	switch opts.Builder {
	case BuilderAuto, BuilderCLI, BuilderAPI:
	default:
		return nil, fmt.Errorf("docker runtime: builder %q: use %q, %q or \"\" (auto)", opts.Builder, BuilderCLI, BuilderAPI)
	}
	seam.OptionDefaults(&opts.LogMaxSize, &opts.LogMaxFiles, &opts.BackoffMin, &opts.BackoffMax, &opts.BackoffReset)

	copts := []client.Opt{client.FromEnv}
	if opts.Host != "" {
		copts = append(copts, client.WithHost(opts.Host))
	}
	cli, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w; %s", ErrUnavailable, err, unavailableFix(err))
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	pcancel()
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s: %w; %s", ErrUnavailable, cli.DaemonHost(), err, unavailableFix(err))
	}

	rctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		opts:     opts,
		names:    containers.Names{Prefix: opts.Prefix},
		log:      opts.Logger,
		cli:      cli,
		stateDir: filepath.Join(dataDir, "runtime", Name),
		ctx:      rctx,
		cancel:   cancel,
		events:   runtime.NewBroker(),
		sups:     map[string]*supervisor{},
	}
	r.Stopper = seam.NewStopper(&r.ids, r.life.Check, r.stop)
	if err := os.MkdirAll(filepath.Join(r.stateDir, "instances"), 0o700); err != nil {
		cancel()
		cli.Close()
		return nil, fmt.Errorf("docker runtime: %w", err)
	}
	if err := r.adoptAll(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Name returns "docker".
func (r *Runtime) Name() string { return Name }

// Prefix returns the prefix of the runtime's objects.
func (r *Runtime) Prefix() string { return r.opts.Prefix }

// Close stops supervising and copying logs, and ends event streams.
// Containers keep running; a new runtime with the same prefix and data
// directory re-adopts them.
func (r *Runtime) Close() error {
	if !r.life.End(r.cancel) {
		return nil
	}
	r.events.Close()
	return r.cli.Close()
}

// imageName is the repository:tag of a release's image.
func (r *Runtime) imageName(app, release string) string {
	if r.opts.Prefix == DefaultPrefix {
		return app + ":" + release
	}
	return r.opts.Prefix + "-" + app + ":" + release
}

func (r *Runtime) statePath(id string) string {
	return filepath.Join(r.stateDir, "instances", id+".json")
}

// bindDir is where the one copy per app of "./dir" host paths was kept
// before there was one per release (see filesDir).
func (r *Runtime) bindDir(app string) string {
	return filepath.Join(r.stateDir, "binds", app)
}

// unavailableFix says how to make an engine that did not answer reachable.
func unavailableFix(err error) string {
	if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
		return "the server's user may not use the Docker socket: run the server as root, or add its user to the docker group"
	}
	return "start Docker (systemctl start docker), or point the server at a running engine with --docker-host (or DOCKER_HOST)"
}

// notOwnedFix says what to do about an object with moorage's name that
// moorage did not make.
func (r *Runtime) notOwnedFix(kind, name string) string {
	return fmt.Sprintf("moorage never uses nor removes what it did not make: if that %s is not needed, remove it (docker %s rm %s); or give this server its own names with --docker-prefix", kind, kind, name)
}

// isNotFound reports a 404 of the engine.
func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
