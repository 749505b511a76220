// Package seam is what the runtimes share above what differs between them:
// a runtime's open or closed life (Life) and its Stop (Stopper), the
// instance id locks, the checks of names and instance specs, the one-off
// registry, the line and drain writers of build, task and exec output, the
// log paths, reading and pruning of logs, handing a fresh volume to the
// user its instances run as, and the supervision of an instance (crash or
// stop, backoff, restart count and events: supervise.go). The process,
// docker and swarm runtimes (and any later driver) call these instead of
// keeping copies. Nothing here knows a container engine: what the docker
// and swarm runtimes share about Docker's objects is package containers.
// docs/architecture.md ("The runtime seam") says what sits above and below.
package seam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/logs"
)

// IDLocks serializes the operations on one instance id (start, stop,
// remove, settle...). The zero value is ready to use.
type IDLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	mu   sync.Mutex
	refs int
}

// Lock takes id's lock and returns what releases it.
func (l *IDLocks) Lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*idLock{}
	}
	k := l.m[id]
	if k == nil {
		k = &idLock{}
		l.m[id] = k
	}
	k.refs++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

// Do runs fn holding id's lock once check (the runtime's "not closed")
// passes: Stop, Remove, Pause and Resume of both runtimes.
func (l *IDLocks) Do(check func() error, id string, fn func() error) error {
	if err := check(); err != nil {
		return err
	}
	unlock := l.Lock(id)
	defer unlock()
	return fn()
}

// LockSpec is the preamble of Start: check (the runtime's "not closed")
// and validate (its spec rules) pass, then it holds the lock of the spec's
// instance id until unlock.
func (l *IDLocks) LockSpec(check func() error, s *runtime.InstanceSpec, validate func(*runtime.InstanceSpec) error) (id string, unlock func(), err error) {
	if err := check(); err != nil {
		return "", nil, err
	}
	if err := validate(s); err != nil {
		return "", nil, err
	}
	id = s.ID()
	return id, l.Lock(id), nil
}

// Start is the Start of the runtimes whose start of an instance either
// succeeds or fails whole (docker, swarm): LockSpec, then start (the
// runtime's own) of the spec's instance id, holding its lock; its error
// names the start of id.
func (l *IDLocks) Start(check func() error, s *runtime.InstanceSpec, validate func(*runtime.InstanceSpec) error, start func(id string) (runtime.Instance, error)) (runtime.Instance, error) {
	id, unlock, err := l.LockSpec(check, s, validate)
	if err != nil {
		return runtime.Instance{}, err
	}
	defer unlock()
	in, err := start(id)
	if err != nil {
		return runtime.Instance{}, fmt.Errorf("start %s: %w", id, err)
	}
	return in, nil
}

// WaitExit is the end of a Stop: it waits until the instance's supervisor
// is done (exited true), or ctx ends or the runtime closes (an error naming
// the stop of id), or timeout fires (exited false, no error; nil: never).
func WaitExit(ctx context.Context, closed, done <-chan struct{}, timeout <-chan time.Time, id string) (exited bool, err error) {
	select {
	case <-done:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("stop %s: %w", id, ctx.Err())
	case <-closed:
		return false, fmt.Errorf("stop %s: %w", id, runtime.ErrRuntimeClosed)
	case <-timeout:
		return false, nil
	}
}

// Tasks is the set of one-offs (Run) in progress, by instance id. The zero
// value is ready to use.
type Tasks struct {
	mu sync.Mutex
	m  map[string]bool
}

// Begin starts the one-off s: check (the runtime's "not closed") passes,
// its Kind defaults to KindTask, validate (the runtime's spec rules)
// passes, and no one-off with its id runs already (ErrExists). end forgets
// it once it is over.
func (t *Tasks) Begin(check func() error, s *runtime.RunSpec, validate func(*runtime.InstanceSpec) error) (end func(), err error) {
	if err := check(); err != nil {
		return nil, err
	}
	if s.Kind == "" {
		s.Kind = runtime.KindTask
	}
	if err := validate(&s.InstanceSpec); err != nil {
		return nil, err
	}
	id := s.ID()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] {
		return nil, fmt.Errorf("run %s: %w", id, runtime.ErrExists)
	}
	if t.m == nil {
		t.m = map[string]bool{}
	}
	t.m[id] = true
	return func() {
		t.mu.Lock()
		delete(t.m, id)
		t.mu.Unlock()
	}, nil
}

// Run is a runtime's Run around run (the runtime's own): Begin, then run
// of the one-off's id until it ends. fail, for run's errors, names the
// run of id and returns exit code -1.
func (t *Tasks) Run(check func() error, s *runtime.RunSpec, validate func(*runtime.InstanceSpec) error, run func(id string, fail func(error) (int, error)) (int, error)) (int, error) {
	end, err := t.Begin(check, s, validate)
	if err != nil {
		return -1, err
	}
	defer end()
	id := s.ID()
	return run(id, func(err error) (int, error) { return -1, fmt.Errorf("run %s: %w", id, err) })
}

// ValidName rejects a name that could escape a directory or make an
// invalid Docker object name (an app, service, release, volume or instance
// id). The spec allows far less; this guards the runtime's own paths.
func ValidName(kind, s string) error {
	if s == "" || s == "." || s == ".." || filepath.Base(s) != s || strings.ContainsAny(s, ":@ ") {
		return fmt.Errorf("%s %q: %w", kind, s, runtime.ErrInvalidSpec)
	}
	return nil
}

// Valid runs check (the runtime's "not closed"), then ValidName on each
// kind, name pair: the preamble of every runtime method that takes names.
func Valid(check func() error, kindNames ...string) error {
	if err := check(); err != nil {
		return err
	}
	for i := 0; i+1 < len(kindNames); i += 2 {
		if err := ValidName(kindNames[i], kindNames[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// IsHostPath reports whether a mount names a host path ("/srv/x",
// "./conf") rather than a volume.
func IsHostPath(name string) bool {
	return strings.HasPrefix(name, "/") || strings.HasPrefix(name, ".")
}

// ValidateSpec checks what every runtime needs of an instance spec: its
// names, kind and port, and its mounts' volume names. Host path mounts are
// refused unless the runtime mounts them (hostPaths). Each runtime then
// checks what only it needs.
func ValidateSpec(s *runtime.InstanceSpec, hostPaths bool) error {
	if err := Valid(func() error { return nil }, "app", s.App, "service", s.Service); err != nil {
		return err
	}
	if s.Release != "" {
		if err := ValidName("release", s.Release); err != nil {
			return err
		}
	}
	switch s.Kind {
	case runtime.KindService, runtime.KindAccessory, runtime.KindTask:
	default:
		return fmt.Errorf("kind %q: %w", s.Kind, runtime.ErrInvalidSpec)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("%s: port %d: %w", s.ID(), s.Port, runtime.ErrInvalidSpec)
	}
	for _, m := range s.Mounts {
		if IsHostPath(m.Name) {
			// "./dir" is a directory of the upload: the docker runtime
			// mounts the release's copy; the process runtime runs in the
			// release directory, where it already is.
			if hostPaths || strings.HasPrefix(m.Name, "./") {
				continue
			}
			return fmt.Errorf("%s: host path mount %s: only the docker runtime mounts host paths: %w", s.ID(), m.Name, runtime.ErrInvalidSpec)
		}
		if err := ValidName("volume", m.Name); err != nil {
			return err
		}
	}
	return nil
}

// ByID sorts what List returns by instance id, and returns it.
func ByID(ins []runtime.Instance) []runtime.Instance {
	slices.SortFunc(ins, func(a, b runtime.Instance) int { return strings.Compare(a.ID, b.ID) })
	return ins
}

// LogDir is the directory of app's instance logs under the data directory.
func LogDir(dataDir, app string) string { return filepath.Join(dataDir, "logs", app) }

// LogPath is the log file of instance id of app.
func LogPath(dataDir, app, id string) string { return filepath.Join(LogDir(dataDir, app), id+".log") }

// ReadLogs is a runtime's Logs for the runtimes whose logs are copied into
// DataDir/logs (docker, swarm): it finds instance id's log, and with Follow
// keeps streaming while exists says the instance is still there (asked at
// most every half second) and closed is open.
func ReadLogs(ctx context.Context, check func() error, dataDir, id string, opts runtime.LogOptions, exists func(context.Context) bool, closed <-chan struct{}, fn func(runtime.LogLine) error) error {
	return ReadLog(ctx, check, id, opts, closed, fn, func() (string, func() bool) {
		var (
			checked time.Time
			live    = true
		)
		return logs.Find(dataDir, id), func() bool {
			if time.Since(checked) >= 500*time.Millisecond {
				live = exists(ctx)
				checked = time.Now()
			}
			return live
		}
	})
}

// ReadLog is every runtime's Logs: once check (the runtime's "not closed")
// passes and id is a valid name, find returns instance id's current log
// file ("" when it never logged: ErrNotFound) and what tells whether the
// instance is still there; with Follow the lines keep streaming while it
// is and closed is open (see logs.Reader).
func ReadLog(ctx context.Context, check func() error, id string, opts runtime.LogOptions, closed <-chan struct{}, fn func(runtime.LogLine) error, find func() (base string, live func() bool)) error {
	if err := check(); err != nil {
		return err
	}
	if err := ValidName("instance", id); err != nil {
		return fmt.Errorf("logs of %s: %w", id, runtime.ErrNotFound)
	}
	base, live := find()
	if base == "" {
		return fmt.Errorf("logs of %s: %w", id, runtime.ErrNotFound)
	}
	lr := logs.Reader{ID: id, Base: base, Live: live, Closed: closed}
	return lr.Read(ctx, opts, fn)
}

// PruneLogs deletes app's log files (current and rotated) of instances
// ret.Keep does not keep: first those not written to for MaxAge, then the
// oldest until the app's logs take at most MaxBytes (see logs.Prune).
func PruneLogs(ctx context.Context, check func() error, dataDir, app string, ret runtime.LogRetention) (int64, error) {
	if err := Valid(check, "app", app); err != nil {
		return 0, err
	}
	return logs.Prune(ctx, LogDir(dataDir, app), ret)
}

// LineWriter hands W one whole line per Write (a line longer than
// logs.MaxLine is split). A failing W is ignored: the output keeps being
// drained, so the command writing it never blocks on it.
type LineWriter struct {
	W      io.Writer
	buf    []byte
	failed bool
}

func (l *LineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) >= logs.MaxLine {
		l.emit(l.buf)
		l.buf = nil
	}
	l.buf = append([]byte(nil), l.buf...)
	return len(p), nil
}

func (l *LineWriter) emit(b []byte) {
	if !l.failed {
		if _, err := l.W.Write(b); err != nil {
			l.failed = true
		}
	}
}

// Flush writes a final partial line.
func (l *LineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

// HandOver gives dir (a fresh volume or accessory directory) to the user
// uid:gid its instances run as, so that they can write where they must.
// It changes only a directory that still belongs to from (the server's
// user, or root for an engine's volume) and, with onlyEmpty, only an empty
// one: a directory with content, or someone else's, keeps its owner. It
// reports whether it changed the owner.
func HandOver(dir string, from, uid, gid int, onlyEmpty bool) (bool, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != from || (onlyEmpty && !emptyDir(dir)) {
		return false, nil
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return false, err
	}
	return true, nil
}

func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}

// Setup is the start of every runtime's New: dataDir made absolute (it
// must be set), logger defaulting to slog's.
func Setup(runtimeName string, dataDir *string, logger **slog.Logger) error {
	if *dataDir == "" {
		return fmt.Errorf("%s runtime: no data directory", runtimeName)
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return fmt.Errorf("%s runtime: %w", runtimeName, err)
	}
	*dataDir = abs
	if *logger == nil {
		*logger = slog.Default()
	}
	return nil
}

// Defaults of the options every runtime has: log rotation and the crash
// backoff of supervision.
const (
	DefaultLogMaxSize   = 10 << 20
	DefaultLogMaxFiles  = 5
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultBackoffReset = 10 * time.Second
)

// OptionDefaults sets the options every runtime has that are not set
// (zero or negative) to their defaults; the backoff's max is at least its
// min.
func OptionDefaults(logMaxSize *int64, logMaxFiles *int, backoffMin, backoffMax, backoffReset *time.Duration) {
	if *logMaxSize <= 0 {
		*logMaxSize = DefaultLogMaxSize
	}
	if *logMaxFiles <= 0 {
		*logMaxFiles = DefaultLogMaxFiles
	}
	if *backoffMin <= 0 {
		*backoffMin = DefaultBackoffMin
	}
	if *backoffMax <= 0 {
		*backoffMax = DefaultBackoffMax
	}
	*backoffMax = max(*backoffMax, *backoffMin)
	if *backoffReset <= 0 {
		*backoffReset = DefaultBackoffReset
	}
}
