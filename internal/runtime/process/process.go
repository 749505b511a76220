//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
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
	life   seam.Life // Close shuts it, and waits for its goroutines
	events *runtime.Broker
	kick   chan struct{} // wakes the event watcher

	seam.Stopper // Stop: see stop

	mu       sync.Mutex
	handles  map[string]*handle // instances whose shim is alive and watched
	starting map[string]bool    // Start in progress
	tasks    seam.Tasks         // Run in progress
	ids      seam.IDLocks
}

var _ runtime.Runtime = (*Runtime)(nil)

// New opens the process runtime on opts.DataDir. It re-adopts the instances
// whose shim is still running (without restarting them), marks those whose
// shim is gone as exited, and kills one-offs orphaned by a crashed server.
func New(opts Options) (*Runtime, error) {
	if err := seam.Setup(Name, &opts.DataDir, &opts.Logger); err != nil {
		return nil, err
	}
	dataDir := opts.DataDir
	seam.OptionDefaults(&opts.LogMaxSize, &opts.LogMaxFiles, &opts.BackoffMin, &opts.BackoffMax, &opts.BackoffReset)
	if opts.PortMin <= 0 || opts.PortMax < opts.PortMin {
		opts.PortMin, opts.PortMax = portRange()
	}
	exe := opts.Executable
	if exe == "" {
		var err error
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
	}
	r.Stopper = seam.NewStopper(&r.ids, r.life.Check, r.stop)
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
	r.removeStrayTmp()
	r.life.Go(r.watch)
	return r, nil
}

// Name returns "process".
func (r *Runtime) Name() string { return Name }

// Close stops watching instances and ends event streams. Instances keep
// running; a new runtime on the same data directory re-adopts them.
func (r *Runtime) Close() error {
	if !r.life.Shut() {
		return nil
	}
	r.mu.Lock()
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
	r.life.Wait()
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

// removeStrayTmp removes the temporary directories of instances that no
// longer exist and of one-offs that no longer run (a crashed server's).
func (r *Runtime) removeStrayTmp() {
	ents, err := os.ReadDir(r.tmpRoot())
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		keep := r.instanceDir(n)
		if task, ok := strings.CutPrefix(n, "task-"); ok {
			keep = filepath.Join(r.taskDir, task+".json")
		}
		if _, err := os.Stat(keep); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(filepath.Join(r.tmpRoot(), n))
		}
	}
}
