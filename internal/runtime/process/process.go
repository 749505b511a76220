//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/moorage/moorage/internal/runtime"
)

// Runtime runs instances as supervised processes. It implements
// runtime.Runtime.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	instDir string
	taskDir string
	exe     string

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events *runtime.Broker
	kick   chan struct{} // wakes the event watcher

	mu       sync.Mutex
	closed   bool
	handles  map[string]*handle // instances whose shim is alive and watched
	starting map[string]bool    // Start in progress
	tasks    map[string]bool    // Run in progress
	idLocks  map[string]*idLock
}

var _ runtime.Runtime = (*Runtime)(nil)

// New opens the process runtime on opts.DataDir. It re-adopts the instances
// whose shim is still running (without restarting them), marks those whose
// shim is gone as exited, and kills one-offs orphaned by a crashed server.
func New(opts Options) (*Runtime, error) {
	if opts.DataDir == "" {
		return nil, errors.New("process runtime: no data directory")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	opts.DataDir = dataDir
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogMaxSize <= 0 {
		opts.LogMaxSize = DefaultLogMaxSize
	}
	if opts.LogMaxFiles <= 0 {
		opts.LogMaxFiles = DefaultLogMaxFiles
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = DefaultBackoffMin
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffMin)
	if opts.BackoffReset <= 0 {
		opts.BackoffReset = DefaultBackoffReset
	}
	if opts.PortMin <= 0 || opts.PortMax < opts.PortMin {
		opts.PortMin, opts.PortMax = portRange()
	}
	exe := opts.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			exe = "/proc/self/exe"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		opts:     opts,
		log:      opts.Logger,
		instDir:  filepath.Join(dataDir, "runtime", Name, "instances"),
		taskDir:  filepath.Join(dataDir, "runtime", Name, "tasks"),
		exe:      exe,
		ctx:      ctx,
		cancel:   cancel,
		events:   runtime.NewBroker(),
		kick:     make(chan struct{}, 1),
		handles:  map[string]*handle{},
		starting: map[string]bool{},
		tasks:    map[string]bool{},
		idLocks:  map[string]*idLock{},
	}
	for _, d := range []string{r.instDir, r.taskDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			cancel()
			return nil, fmt.Errorf("process runtime: %w", err)
		}
	}
	r.killOrphanTasks()
	if err := r.adoptAll(); err != nil {
		cancel()
		return nil, err
	}
	r.wg.Add(1)
	go r.watch()
	return r, nil
}

// Name returns "process".
func (r *Runtime) Name() string { return Name }

// Close stops watching instances and ends event streams. Instances keep
// running; a new runtime on the same data directory re-adopts them.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	hs := make([]*handle, 0, len(r.handles))
	for _, h := range r.handles {
		hs = append(hs, h)
	}
	r.mu.Unlock()
	r.cancel()
	for _, h := range hs {
		h.closeWatch()
	}
	r.events.Close()
	r.wg.Wait()
	return nil
}

// check returns ErrRuntimeClosed after Close.
func (r *Runtime) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return runtime.ErrRuntimeClosed
	}
	return nil
}

// path helpers

func (r *Runtime) releaseDir(app, release string) string {
	return filepath.Join(r.opts.DataDir, "releases", app, release)
}

func (r *Runtime) volumeDir(app, name string) string {
	return filepath.Join(r.opts.DataDir, "volumes", app, name)
}

func (r *Runtime) accessoryDir(app, name string) string {
	return filepath.Join(r.opts.DataDir, "accessories", app, name)
}

func (r *Runtime) logPath(app, id string) string {
	return filepath.Join(r.opts.DataDir, "logs", app, id+".log")
}

// idLock serializes operations on one instance id.
type idLock struct {
	mu   sync.Mutex
	refs int
}

func (r *Runtime) lockID(id string) (unlock func()) {
	r.mu.Lock()
	l := r.idLocks[id]
	if l == nil {
		l = &idLock{}
		r.idLocks[id] = l
	}
	l.refs++
	r.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		r.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(r.idLocks, id)
		}
		r.mu.Unlock()
	}
}

// validName rejects names that could escape their directory.
func validName(kind, s string) error {
	if s == "" || s == "." || s == ".." || filepath.Base(s) != s {
		return fmt.Errorf("%s %q: %w", kind, s, runtime.ErrInvalidSpec)
	}
	return nil
}
