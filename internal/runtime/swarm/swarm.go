// Package swarm is the runtime that runs instances on a Docker Swarm,
// through a manager's Docker API (github.com/moby/moby/client).
//
// One instance is one swarm service with one replica: Swarm places it on a
// node, restarts its task when it exits, and moves it off a node that is
// lost. Everything else stays moorage's, exactly as on the docker runtime:
// a new release's services start beside the old ones, the engine gates them
// on their health, moves traffic in one step, drains and stops the old
// ones. Swarm's own rolling update is never used.
//
//	services   <prefix>-<instance id>    labels moorage.prefix, .app, .service,
//	                                     .release, .index, .kind, .hash,
//	                                     .instance, .port, .publish
//	jobs       <prefix>-<task id>        release tasks and one-offs without
//	                                     input: replicated jobs, restart none
//	networks   <prefix>-<app>            an attachable overlay, DNS round robin
//	images     built on the manager by a docker runtime of prefix
//	           <prefix>-swarm, then shipped by image ID to every node
//	           (Options.Nodes) and run by that ID; or pushed to
//	           Options.Registry and run by digest
//	configs    <prefix>-<app>-<hash>     a file of a "./dir" of the upload
//	                                     (files:, accessory ./conf), named by
//	                                     its content and mode (files.go)
//
// A task's container carries the label moorage.prefix=swarm-task:<prefix>,
// a value no runtime uses: a docker runtime on a node's engine never takes
// a task's container for one of its own (containers inherit their image's
// labels, and the image carries the builder's prefix).
//
// A one-off with a terminal or input (`moorage run`) is a plain container
// on the manager, <prefix>-<task id>, labelled
// moorage.prefix=swarm-run:<prefix>, on the app's overlay network: a job
// attaches neither (run_interactive.go).
//
// Traffic reaches a web task on its node's address at a port the node
// picks (a host-mode published port). The routing mesh is not used: it
// needs IPVS in the node's kernel, and it would balance under moorage's
// own balancer. Singletons and accessories are pinned to one node
// (node.id==), so that Swarm never starts a second copy by itself; a
// new singleton is created only once the old task's state is final.
//
// The runtime watches the tasks of its services four times a second and
// reports crashes and restarts on Events, as the other runtimes do. Logs of
// every task, on every node, are copied from the manager's service logs
// into the same files as the other runtimes' (DataDir/logs/<app>/<id>.log).
package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Name is the runtime's name.
const Name = "swarm"

// ErrUnavailable is returned by New when the manager does not answer, or
// is not a swarm manager.
var ErrUnavailable = errors.New("swarm manager not available")

// Labels only the swarm runtime puts on its services, beside the docker
// runtime's (package containers).
const (
	labelSingle = "moorage.single"
	// labelPaused holds the ID of the task that Pause froze. A service
	// label, so setting it does not roll the task; a task that replaced
	// the frozen one is not paused.
	labelPaused = "moorage.paused"
)

// taskPrefix is the moorage.prefix label of a task's container.
const taskPrefix = "swarm-task:"

// Options configure a swarm runtime.
type Options struct {
	// DataDir is the server's data directory (logs, the builder's state).
	DataDir string
	Logger  *slog.Logger
	// Prefix names and labels everything the runtime creates (default
	// "moorage").
	Prefix string
	// Host is a manager's Docker API address ("unix:///var/run/docker.sock",
	// "tcp://10.0.0.1:2376", "ssh://user@host"); "" uses DOCKER_HOST or
	// the default socket.
	Host string
	// Nodes maps a node's hostname (as `docker node ls` shows it) to its
	// Docker API address. Images are shipped to these nodes, and exec,
	// pause and resume reach tasks through them. The manager's own entry
	// may be left out.
	Nodes map[string]string
	// Registry, when set ("10.0.0.1:5000" or "registry.example.com/team"),
	// is where release images go instead of being shipped to each node:
	// the manager pushes <Registry>/<app>:<release>, and services name the
	// image by its digest (<Registry>/<app>@sha256:...), which every node
	// pulls. The nodes must reach it, and trust it (a plain-HTTP registry
	// needs insecure-registries in each node's daemon.json).
	Registry string
	// Credentials gives the login of a registry host (`moorage registry
	// login`): the manager pushes with the one of Registry's host, and
	// each service is created with the one of its image's host, which
	// its nodes pull with. Nil: anonymous.
	Credentials Credentials
	// LogMaxSize and LogMaxFiles rotate each instance's log (defaults 10
	// MiB, 5 files).
	LogMaxSize  int64
	LogMaxFiles int
	// Poll is how often task states are read (default 250ms).
	Poll time.Duration
}

// Runtime runs instances as swarm services. It implements runtime.Runtime.
type Runtime struct {
	opts    Options
	names   containers.Names // of services, networks, volumes
	log     *slog.Logger
	cli     *client.Client // the manager
	builder *docker.Runtime
	self    string // the manager's node ID

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	life   seam.Life // Close shuts it, and waits for its goroutines
	events *runtime.Broker

	seam.Stopper // Stop: see stop

	netMu sync.Mutex
	ids   seam.IDLocks
	tasks seam.Tasks

	mu        sync.Mutex
	nodes     map[string]*nodeClient // by hostname
	followers seam.Followers         // log copies by service name
	watch     watchState
	stopping  map[string]bool // services being stopped on purpose, by name
}

var _ runtime.Runtime = (*Runtime)(nil)
var _ runtime.LostStopper = (*Runtime)(nil)

// nodeClient is a node's own Docker API.
type nodeClient struct {
	addr string
	once sync.Once
	cli  *client.Client
	err  error
}

// New connects to the manager (negotiating the API version), checks that
// it is a swarm manager, starts the image builder on its engine, removes
// the one-offs a dead server left (waiting until their tasks have exited,
// so that two release tasks never run at once) and adopts the services of
// opts.Prefix: their logs are copied again and their tasks watched.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if err := seam.Setup(Name, &opts.DataDir, &opts.Logger); err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = docker.DefaultPrefix
	}
	if err := containers.ValidPrefix(Name, opts.Prefix); err != nil {
		return nil, err
	}
	if opts.LogMaxSize <= 0 {
		opts.LogMaxSize = seam.DefaultLogMaxSize
	}
	if opts.LogMaxFiles <= 0 {
		opts.LogMaxFiles = seam.DefaultLogMaxFiles
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	cli, err := connect(ctx, opts.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: %w; point the server at a manager's Docker API with --swarm-host (run `docker swarm init` there first)", ErrUnavailable, err)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !info.Info.Swarm.ControlAvailable {
		cli.Close()
		state := string(info.Info.Swarm.LocalNodeState)
		return nil, fmt.Errorf("%w: the engine at %s is not a swarm manager (swarm state %q); run `docker swarm init` on it, or point --swarm-host at a manager", ErrUnavailable, cli.DaemonHost(), state)
	}
	b, err := docker.New(ctx, docker.Options{
		DataDir: filepath.Join(opts.DataDir, "runtime", Name, "builder"),
		Logger:  opts.Logger.With("part", "build"),
		Prefix:  opts.Prefix + "-swarm",
		Host:    cli.DaemonHost(),
		// "./dir" files become Swarm configs: those that cannot fail
		// the build before the image is built.
		CheckFiles: checkFiles,
	})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("swarm runtime: image builder on the manager: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		opts:     opts,
		names:    containers.Names{Prefix: opts.Prefix},
		log:      opts.Logger,
		cli:      cli,
		builder:  b,
		self:     info.Info.Swarm.NodeID,
		ctx:      rctx,
		cancel:   cancel,
		events:   runtime.NewBroker(),
		nodes:    map[string]*nodeClient{},
		stopping: map[string]bool{},
	}
	r.Stopper = seam.NewStopper(&r.ids, r.life.Check, r.stop)
	r.watch.init()
	for name, addr := range opts.Nodes {
		r.nodes[name] = &nodeClient{addr: addr}
	}
	if err := r.adopt(ctx); err != nil {
		r.Close()
		return nil, err
	}
	r.life.Go(r.watchLoop)
	return r, nil
}

// connect makes a client for a Docker API address and checks that it
// answers.
func connect(ctx context.Context, host string) (*client.Client, error) {
	copts := []client.Opt{client.FromEnv}
	if host != "" {
		copts = append(copts, client.WithHost(host))
	}
	cli, err := client.New(copts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%s: %w", cli.DaemonHost(), err)
	}
	return cli, nil
}

// Name returns "swarm".
func (r *Runtime) Name() string { return Name }

// Close stops watching and copying logs, and ends event streams. Services
// keep running; a new runtime with the same prefix adopts them.
func (r *Runtime) Close() error {
	if !r.life.End(r.cancel) {
		return nil
	}
	r.events.Close()
	r.builder.Close()
	for _, n := range r.nodes {
		if n.cli != nil {
			n.cli.Close()
		}
	}
	return r.cli.Close()
}

// Events streams instance events until ctx is done.
func (r *Runtime) Events(ctx context.Context) <-chan runtime.InstanceEvent {
	return r.events.Subscribe(ctx)
}

// node returns the Docker API of the node with that hostname, connecting
// on first use; nil when none was given (the manager's is the runtime's
// own).
func (r *Runtime) node(ctx context.Context, hostname string) (*client.Client, error) {
	r.mu.Lock()
	n := r.nodes[hostname]
	r.mu.Unlock()
	if n == nil {
		if r.watch.isSelf(hostname, r.self) {
			return r.cli, nil
		}
		return nil, fmt.Errorf("no Docker API is known for node %s: give the server --swarm-node %s=ADDRESS (unix://, tcp:// or ssh://): %w", hostname, hostname, runtime.ErrNotSupported)
	}
	n.once.Do(func() {
		n.cli, n.err = connect(ctx, n.addr)
	})
	if n.err != nil {
		return nil, fmt.Errorf("node %s's Docker API: %w", hostname, n.err)
	}
	return n.cli, nil
}

// nodeNames lists the hostnames with a Docker API, sorted.
func (r *Runtime) nodeNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name := range r.nodes {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func isNotFound(err error) bool {
	return cerrdefs.IsNotFound(err) || (err != nil && strings.Contains(err.Error(), "not found"))
}

// final reports whether a task state is final: the task's container has
// exited, or never will start.
func final(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateShutdown, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}

// sleep waits d, or returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stateDir is the runtime's own state directory.
func (r *Runtime) stateDir() string { return filepath.Join(r.opts.DataDir, "runtime", Name) }
