// Package server assembles a moorage host daemon: the store, the runtimes,
// the proxy, the engine and the control API, with an orderly start
// (recovery before serving) and a graceful shutdown.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/paths"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/secrets"
	"github.com/moorage/moorage/internal/store"
	"github.com/moorage/moorage/internal/version"
)

// ErrDataDirBusy is returned when another server uses the data dir.
var ErrDataDirBusy = errors.New("data dir in use")

// Config configures a server.
type Config struct {
	DataDir  string // default paths.DefaultDataDir()
	Socket   string // default paths.Socket(DataDir)
	HTTPAddr string // the proxy's address, default ":80"
	Logger   *slog.Logger
	// StopOnShutdown stops every instance when the server shuts down
	// (`moorage up`); a daemon leaves them running and re-adopts them.
	StopOnShutdown bool
	// MaxUpload bounds an upload's unpacked size (default 2 GiB).
	MaxUpload int64
	// DockerPrefix names and labels the docker runtime's containers,
	// networks, volumes and images (default "moorage"); servers sharing an
	// engine need different prefixes.
	DockerPrefix string
	// DockerHost is the Docker Engine's address ("" = $DOCKER_HOST, else
	// the default socket).
	DockerHost string
}

// Server is a running moorage server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	lockFile *os.File
	store    *store.Store
	runtimes map[string]runtime.Runtime
	proxy    *proxy.Proxy
	engine   *engine.Engine

	apiLn, httpLn net.Listener
	apiSrv        *http.Server
	httpSrv       *http.Server
	serveErr      chan error
	wg            sync.WaitGroup
	shutdownOnce  sync.Once
}

// New returns a server; Start starts it.
func New(cfg Config) *Server {
	if cfg.DataDir == "" {
		cfg.DataDir = paths.DefaultDataDir()
	}
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	if cfg.Socket == "" {
		cfg.Socket = paths.Socket(cfg.DataDir)
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":80"
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 2 << 30
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, log: log, serveErr: make(chan error, 2)}
}

// Start opens the state, binds the listeners, recovers, and serves. On
// error everything it opened is closed again.
func (s *Server) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := os.MkdirAll(s.cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// Traversable, not listable: instances that run as another user
	// (`user:`) reach their release and volume directories through it;
	// the state, key and socket inside are protected by their own modes.
	if err := os.Chmod(s.cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := s.lockDataDir(); err != nil {
		return err
	}
	if s.store, err = store.Open(ctx, filepath.Join(s.cfg.DataDir, "moorage.db")); err != nil {
		return err
	}
	prt, err := process.New(process.Options{DataDir: s.cfg.DataDir, Logger: s.log.With("runtime", "process")})
	if err != nil {
		return fmt.Errorf("process runtime: %w", err)
	}
	s.runtimes = map[string]runtime.Runtime{prt.Name(): prt}
	drt, err := docker.New(ctx, docker.Options{DataDir: s.cfg.DataDir, Logger: s.log.With("runtime", "docker"),
		Prefix: s.cfg.DockerPrefix, Host: s.cfg.DockerHost})
	if err != nil {
		// The server still runs process apps; a docker deploy fails with
		// "runtime not available".
		s.log.Warn("docker runtime not available: apps with runtime docker cannot be deployed until the server is restarted with a reachable engine", "err", err)
	} else {
		s.runtimes[drt.Name()] = drt
	}
	s.proxy = proxy.New(proxy.Options{Logger: s.log.With("component", "proxy")})

	// Bind before recovering, so a taken port fails the start before
	// anything changes.
	if s.httpLn, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("proxy listen on %s: %w (use --http to pick another address)", s.cfg.HTTPAddr, err)
	}
	if s.apiLn, err = listenUnix(s.cfg.Socket); err != nil {
		return err
	}

	box, err := secrets.LoadOrCreate(filepath.Join(s.cfg.DataDir, "secrets.key"))
	if err != nil {
		return err
	}
	sid := make([]byte, 8)
	rand.Read(sid)
	s.engine = engine.New(engine.Options{
		Store: s.store, Runtimes: s.runtimes, Proxy: s.proxy,
		ServerID: hex.EncodeToString(sid), Logger: s.log.With("component", "engine"), Secrets: box,
		DataDir: s.cfg.DataDir,
	})
	if err := s.engine.Start(ctx); err != nil {
		// Recovery problems are recorded per app; the server still serves
		// the apps it could recover.
		s.log.Error("recovery finished with errors", "err", err)
	}

	names := make([]string, 0, len(s.runtimes))
	for n := range s.runtimes {
		names = append(names, n)
	}
	apiSrv := &api.Server{
		Engine: s.engine, UploadDir: filepath.Join(s.cfg.DataDir, "uploads"),
		Limits: archive.Limits{MaxBytes: s.cfg.MaxUpload, MaxFiles: 200000},
		Version: api.Version{Version: version.String(), Schema: store.SchemaVersion(), Runtimes: names,
			DataDir: s.cfg.DataDir, HTTP: s.httpLn.Addr().String()},
		Logger: s.log.With("component", "api"),
	}
	os.RemoveAll(apiSrv.UploadDir) // leftovers of an interrupted upload
	s.apiSrv = &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.httpSrv = &http.Server{
		Handler:           s.proxy,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.serve(s.httpSrv, s.httpLn)
	s.serve(s.apiSrv, s.apiLn)
	s.log.Info("moorage server started", "version", version.String(), "data_dir", s.cfg.DataDir,
		"socket", s.cfg.Socket, "http", s.httpLn.Addr().String(), "runtimes", strings.Join(names, ","))
	return nil
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
}

// Err reports a listener that failed while serving.
func (s *Server) Err() <-chan error { return s.serveErr }

// HTTPAddr is the proxy's bound address.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// Socket is the control socket's path.
func (s *Server) Socket() string { return s.cfg.Socket }

// DataDir is the data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Engine returns the server's engine.
func (s *Server) Engine() *engine.Engine { return s.engine }

// Shutdown stops the server gracefully: no new API calls, running
// operations interrupted at their next step (recovered at the next start),
// in-flight proxied requests finished (until ctx ends). Instances keep
// running unless the server was started with StopOnShutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdownOnce.Do(func() {
		s.log.Info("shutting down")
		var errs []error
		if s.apiSrv != nil {
			s.apiSrv.Shutdown(ctx)
		}
		if s.engine != nil {
			s.engine.Close()
			if s.cfg.StopOnShutdown {
				if e := s.engine.StopAll(ctx); e != nil {
					errs = append(errs, e)
				}
			}
		}
		if s.httpSrv != nil {
			if e := s.httpSrv.Shutdown(ctx); e != nil {
				s.httpSrv.Close()
			}
		}
		s.wg.Wait()
		s.closeAll()
		err = errors.Join(errs...)
	})
	return err
}

func (s *Server) closeAll() {
	if s.apiLn != nil {
		s.apiLn.Close()
		os.Remove(s.cfg.Socket)
	}
	if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	for _, rt := range s.runtimes {
		rt.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.lockFile != nil {
		s.lockFile.Close()
	}
}

// lockDataDir makes sure one server at a time uses the data dir.
func (s *Server) lockDataDir() error {
	p := filepath.Join(s.cfg.DataDir, "moorage.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		return fmt.Errorf("%w: another moorage server (pid %s) uses %s; stop it first", ErrDataDirBusy, strings.TrimSpace(string(b[:n])), s.cfg.DataDir)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lockFile = f
	return nil
}

// listenUnix listens on a unix socket with mode 0660, replacing a stale
// socket file (the data dir lock guarantees no live server owns it).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or use --socket", path)
		}
		os.Remove(path)
	}
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
