// Package engine implements the deploy contract: deploys, rollbacks and
// crash recovery, each as a pure plan (internal/plan) that an executor
// follows step by step, journaling every step in the store before acting
// and handing it to the handler registered for its kind (handlers.go).
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Sentinel errors.
var (
	ErrNoRuntime   = errors.New("runtime not available")
	ErrNoRelease   = errors.New("no such release")
	ErrNotDeployed = errors.New("app has no active release")
	ErrInterrupted = errors.New("interrupted: the server is stopping")
	ErrClosed      = errors.New("engine closed")
)

// Sealer seals and opens secret config values (internal/secrets.Box).
type Sealer interface {
	Seal(app, name string, value []byte) ([]byte, error)
	Open(app, name string, sealed []byte) ([]byte, error)
}

// Options configure an Engine.
type Options struct {
	Store    *store.Store
	Runtimes map[string]runtime.Runtime // by name: "process", "docker"
	// Unavailable says why a runtime could not be opened (a deploy that
	// asks for it fails with that reason).
	Unavailable map[string]error
	Proxy       *proxy.Proxy
	// ServerID identifies this server process in locks.
	ServerID string
	Logger   *slog.Logger
	Secrets  Sealer // nil: secrets cannot be set, releases with secrets cannot start
	// DataDir holds backups (by default) and scratch space.
	DataDir string
	// Certs and Edge, when set, get each app's TLS sites and front-door
	// policy (HTTPS redirect, canonical host, HSTS) whenever it is routed.
	Certs *certs.Manager
	Edge  *edge.Edge
}

// Engine runs deploys, rollbacks and recovery.
type Engine struct {
	st        *store.Store
	runtimes  map[string]runtime.Runtime
	why       map[string]error
	proxy     *proxy.Proxy
	server    string
	log       *slog.Logger
	secrets   Sealer
	dataDir   string
	certs     *certs.Manager
	edge      *edge.Edge
	httpHosts httpHostClaims

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	ops      map[string]*Op // app → the operation that holds its lock
	lockWake chan struct{}  // closed and replaced whenever a lock is released
	watchers map[*watcher]struct{}
	closed   bool
	// coolTimers: when each app's warm web instances stop (warm.go).
	coolTimers map[string]*time.Timer

	failpoints map[string]bool

	hooks []Hooks // see AddHooks (under mu)

	handlersMu sync.RWMutex
	handlers   map[plan.Kind]StepHandler // see Handle
}

// New returns an engine. Call Start to recover and begin watching runtimes.
func New(opts Options) *Engine {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		st:         opts.Store,
		runtimes:   opts.Runtimes,
		why:        opts.Unavailable,
		proxy:      opts.Proxy,
		server:     opts.ServerID,
		log:        log,
		secrets:    opts.Secrets,
		dataDir:    opts.DataDir,
		certs:      opts.Certs,
		edge:       opts.Edge,
		ctx:        ctx,
		cancel:     cancel,
		ops:        map[string]*Op{},
		lockWake:   make(chan struct{}),
		watchers:   map[*watcher]struct{}{},
		failpoints: parseFailpoints(os.Getenv("MOORAGE_FAILPOINTS")),
		handlers:   builtinHandlers(),
	}
	return e
}

// Start watches the runtimes' events and recovers: every app is brought
// back to its active release, deploys a crash interrupted are finished (they
// had cut over) or undone (they had not), and stale locks are cleared.
func (e *Engine) Start(ctx context.Context) error {
	for _, rt := range e.runtimes {
		ch := rt.Events(e.ctx)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.watchEvents(ch)
		}()
	}
	e.restoreMaintenance(ctx)
	if err := e.recover(ctx); err != nil {
		return err
	}
	for _, h := range e.hooksCopy() {
		if h.Background == nil {
			continue
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			h.Background(e.ctx)
		}()
	}
	return nil
}

// Close interrupts running operations at their next step (what they leave
// is recovered at the next start, as after a crash) and waits for them.
// Instances keep running.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.stopCoolTimers()
	e.cancel()
	e.wg.Wait()
	return nil
}

// StopAll stops and removes every instance of every app, accessories
// included (`moorage up` on Ctrl-C).
func (e *Engine) StopAll(ctx context.Context) error {
	var errs []error
	for _, rt := range e.runtimes {
		ins, err := rt.List(ctx, runtime.Filter{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, in := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := rt.Remove(ctx, in.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("stop %s: %w", in.ID, err))
					mu.Unlock()
				}
				e.st.SetInstanceState(context.WithoutCancel(ctx), in.ID, store.InstanceRemoved)
			}()
		}
		wg.Wait()
	}
	for _, a := range e.appsQuiet(ctx) {
		e.proxy.RemoveApp(a)
		e.removeFront(a)
	}
	return errors.Join(errs...)
}

func (e *Engine) appsQuiet(ctx context.Context) []string {
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		return nil
	}
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

// Runtime returns the named runtime.
func (e *Engine) Runtime(name string) (runtime.Runtime, error) {
	rt, ok := e.runtimes[name]
	if !ok {
		var have []string
		for n := range e.runtimes {
			have = append(have, n)
		}
		sort.Strings(have)
		if why := e.why[name]; why != nil {
			return nil, fmt.Errorf("%w: %q is not available on this server: %v (available: %s)", ErrNoRuntime, name, why, strings.Join(have, ", "))
		}
		if name == spec.RuntimeKubernetes {
			return nil, fmt.Errorf("%w: %q is not available on this server: it was started without --kube-config; start it with --kube-config (and --kube-context, --kube-registry) naming the cluster (see docs/runtimes.md#kubernetes)", ErrNoRuntime, name)
		}
		if name == spec.RuntimeSwarm {
			return nil, fmt.Errorf("%w: %q is not available on this server: it was started without --swarm-host; start it with --swarm-host pointing at a swarm manager's Docker API (see docs/runtimes.md#swarm)", ErrNoRuntime, name)
		}
		return nil, fmt.Errorf("%w: %q is not available on this server (available: %s)", ErrNoRuntime, name, strings.Join(have, ", "))
	}
	return rt, nil
}

// Store returns the engine's store.
func (e *Engine) Store() *store.Store { return e.st }

// Proxy returns the engine's proxy.
func (e *Engine) Proxy() *proxy.Proxy { return e.proxy }

// observe lists app's instances in every runtime.
func (e *Engine) observe(ctx context.Context, app string) ([]runtime.Instance, error) {
	var out []runtime.Instance
	for _, rt := range e.runtimes {
		ins, err := rt.List(ctx, runtime.Filter{App: app})
		if err != nil {
			return nil, fmt.Errorf("observe %s on %s: %w", app, rt.Name(), err)
		}
		out = append(out, ins...)
	}
	return out, nil
}

// runtimeOf finds the runtime that runs instance id of app.
func (e *Engine) runtimeOf(ctx context.Context, app, id string) (runtime.Runtime, runtime.Instance, error) {
	for _, rt := range e.runtimes {
		ins, err := rt.List(ctx, runtime.Filter{App: app})
		if err != nil {
			return nil, runtime.Instance{}, err
		}
		for _, in := range ins {
			if in.ID == id {
				return rt, in, nil
			}
		}
	}
	return nil, runtime.Instance{}, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
}

// watcher receives runtime events for the monitor and health gates.
type watcher struct {
	match func(runtime.InstanceEvent) bool
	ch    chan runtime.InstanceEvent
}

func (e *Engine) watch(match func(runtime.InstanceEvent) bool) (*watcher, func()) {
	w := &watcher{match: match, ch: make(chan runtime.InstanceEvent, 64)}
	e.mu.Lock()
	e.watchers[w] = struct{}{}
	e.mu.Unlock()
	return w, func() {
		e.mu.Lock()
		delete(e.watchers, w)
		e.mu.Unlock()
	}
}

func (e *Engine) watchEvents(ch <-chan runtime.InstanceEvent) {
	for ev := range ch {
		ctx := context.WithoutCancel(e.ctx)
		switch ev.Type {
		case runtime.EventCrash:
			msg := fmt.Sprintf("%s crashed (%s); restart %d", ev.Instance, ev.Message, ev.Restarts+1)
			e.log.Warn("instance crashed", "instance", ev.Instance, "exit", ev.ExitCode, "message", ev.Message)
			e.st.RecordCrash(ctx, ev.Instance, ev.ExitCode, ev.Message)
			e.st.AddEvent(ctx, store.AppEvent{App: ev.App, Time: ev.Time, Kind: store.EventCrash, Instance: ev.Instance, Message: msg})
		case runtime.EventRestart:
			msg := ev.Instance + " restarted"
			if ev.Message != "" {
				msg += " (" + ev.Message + ")" // swarm: moved off a node that is down
			}
			e.st.AddEvent(ctx, store.AppEvent{App: ev.App, Time: ev.Time, Kind: store.EventRestart, Instance: ev.Instance, Message: msg})
			e.refreshRoutes(ctx, ev.App)
		}
		e.mu.Lock()
		for w := range e.watchers {
			if w.match(ev) {
				select {
				case w.ch <- ev:
				default:
				}
			}
		}
		e.mu.Unlock()
	}
}

// refreshRoutes re-reads the addresses of the routed instances of app (a
// restarted container may have a new published port) and updates the proxy
// when one changed.
func (e *Engine) refreshRoutes(ctx context.Context, app string) {
	status := e.proxy.Status(app)
	if len(status) == 0 {
		return
	}
	ins, err := e.observe(ctx, app)
	if err != nil {
		return
	}
	addr := map[string]string{}
	for _, in := range ins {
		addr[in.ID] = in.Addr
	}
	changed := false
	for _, s := range status {
		if s.Routed && addr[s.ID] != "" && addr[s.ID] != s.Addr {
			changed = true
		}
	}
	if !changed {
		return
	}
	e.mu.Lock()
	busy := e.ops[app] != nil
	e.mu.Unlock()
	if busy {
		return // the running operation routes with fresh addresses itself
	}
	a, err := e.st.GetApp(ctx, app)
	if err != nil || a.Current == 0 {
		return
	}
	rel, err := e.st.GetRelease(ctx, app, a.Current)
	if err != nil {
		return
	}
	var ids []string
	for _, s := range status {
		if _, ok := addr[s.ID]; s.Routed && ok {
			ids = append(ids, s.ID)
		}
	}
	static, err := e.staticDirs(ctx, rel)
	if err != nil {
		return
	}
	if rts, err := routesFor(rel, ids, ins, static); err == nil {
		e.setFront(rel)
		e.proxy.SetApp(app, rts)
	}
}

// failpoint kills the server with SIGKILL at a named point when the
// MOORAGE_FAILPOINTS environment variable lists it. The crash-recovery tests
// use it to kill the server at every step of a deploy; it is inert
// otherwise. Points are named after a journaled step, with the prefix of
// the plan it belongs to ("undo:", "revert:", "recover:"):
//
//	before:STEP  before the step is journaled
//	during:STEP  at the step's first line of output: a release task printed
//	             (it runs), the first of several instances started, a drain
//	             began, a singleton's old instance stopped
//	commit:STEP  a cutover: right after the store commits its release
//	after:STEP   after the step is journaled as done
func (e *Engine) failpoint(name string) {
	if e.failpoints[name] {
		e.log.Error("failpoint reached: killing the server", "failpoint", name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute) // the signal is on its way
	}
}

func parseFailpoints(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			m[f] = true
		}
	}
	return m
}

// checkFront checks that app's TLS sites and front-door policy can be set
// (host names, certificate files, hosts no other app claims), changing
// nothing.
func (e *Engine) checkFront(app string, sp *spec.Spec) error {
	if e.certs != nil {
		if err := e.certs.Check(app, certs.SitesOf(sp)); err != nil {
			return err
		}
	}
	if e.edge != nil {
		if err := e.edge.Check(app, edge.SitesOf(sp)); err != nil {
			return err
		}
	}
	return nil
}

// setFront applies rel's TLS sites and front-door policy. It is cheap and
// idempotent, and runs whenever the app is routed.
func (e *Engine) setFront(rel *store.Release) error {
	if e.certs != nil {
		if err := e.certs.SetApp(rel.App, certs.SitesOf(rel.Spec)); err != nil {
			return fmt.Errorf("tls of %s: %w", rel.App, err)
		}
	}
	if e.edge != nil {
		if err := e.edge.SetApp(rel.App, edge.SitesOf(rel.Spec)); err != nil {
			return fmt.Errorf("front door of %s: %w", rel.App, err)
		}
	}
	return nil
}

func (e *Engine) removeFront(app string) {
	if e.certs != nil {
		e.certs.RemoveApp(app)
	}
	if e.edge != nil {
		e.edge.RemoveApp(app)
	}
}
