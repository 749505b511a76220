// Package server assembles a moorage host daemon: the store, the runtimes,
// the proxy, the engine and the control API, with an orderly start
// (the proxy serves the recorded routes at once, recovery runs beside it,
// the control API serves after it), a graceful shutdown, and a handover of
// the listening sockets to a new process (Handover).
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/apiserver"
	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/backup"
	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/daemon"
	"github.com/moorage/moorage/internal/edge"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/metrics"
	"github.com/moorage/moorage/internal/notify"
	"github.com/moorage/moorage/internal/paths"
	"github.com/moorage/moorage/internal/pipeline"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/prune"
	"github.com/moorage/moorage/internal/query"
	"github.com/moorage/moorage/internal/reglogin"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/kubernetes"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/runtime/swarm"
	"github.com/moorage/moorage/internal/secrets"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
	"github.com/moorage/moorage/internal/version"
)

// ErrDataDirBusy is returned when another server uses the data dir.
var ErrDataDirBusy = errors.New("data dir in use")

// Config configures a server (internal/daemon's, which the CLI fills in
// without importing this package).
type Config = daemon.Config

// CertsConfig configures the HTTPS listener's certificates (certs.Options).
type CertsConfig = daemon.CertsConfig

// DefaultDrainTimeout is Config.DrainTimeout's default: deploy.drain_timeout's.
const DefaultDrainTimeout = daemon.DefaultDrainTimeout

// HTTPSOff as Config.HTTPSAddr turns HTTPS off.
const HTTPSOff = daemon.HTTPSOff

// certsOptions are c's certs.Options, without the data dir, the logger and
// the listener addresses.
func certsOptions(c CertsConfig) certs.Options {
	o := certs.Options{Email: c.Email, CA: c.CA, Staging: c.Staging, CARoot: c.CARoot, ExtraIPs: c.ExtraIPs,
		DisableHTTPChallenge: c.DisableHTTPChallenge, DisableTLSALPNChallenge: c.DisableTLSALPNChallenge}
	if c.FallbackCA != "" {
		o.Fallback = &certs.Issuer{CA: c.FallbackCA, EABKeyID: c.FallbackEABKeyID, EABMACKey: c.FallbackEABMACKey}
	}
	return o
}

// TLSSite is a routed service with tls: on, and its tls: mode.
type TLSSite = daemon.TLSSite

// TLSSitesOf returns sp's routed services with tls: on: the ones a server
// with HTTPS off refuses, or serves over plain HTTP with PlainWhenHTTPSOff.
func TLSSitesOf(sp *spec.Spec) []TLSSite {
	var out []TLSSite
	for _, s := range certs.SitesOf(sp) {
		if certs.HasTLS([]certs.Site{s}) {
			out = append(out, TLSSite{Service: s.Service, Mode: s.Mode})
		}
	}
	return out
}

// Host is how the CLI runs servers: cmd/moorage hands it to cli.Main.
var Host = daemon.Host{New: func(cfg Config) daemon.Daemon { return New(cfg) }, TLSSitesOf: TLSSitesOf}

// Server is a running moorage server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	lockFile *os.File
	store    *store.Store
	runtimes map[string]runtime.Runtime
	proxy    *proxy.Proxy
	engine   *engine.Engine
	backups  *backup.Manager
	pruner   *prune.Manager

	certs *certs.Manager
	edge  *edge.Edge

	apiLn, httpLn, httpsLn, metricsLn net.Listener
	apiSrv, metricsSrv                *http.Server
	apiCancel                         context.CancelFunc           // ends the API handlers' contexts
	front, httpsFront                 *proxy.Server                // the proxy on the HTTP and HTTPS listeners
	dashboard                         atomic.Pointer[http.Handler] // set once the API serves
	dashboardClose                    func()                       // ends the dashboard's event streams
	hooks                             atomic.Pointer[http.Handler] // HTTPS with webhooks, once the API serves
	serveErr                          chan error
	wg                                sync.WaitGroup
	shutdownOnce                      sync.Once

	// inherited are the listeners systemd or an older server passed.
	inherited *inherited
	// keepSocket: the control socket's file belongs to systemd or to the
	// server this one handed over to; closing must not remove it.
	keepSocket bool
	routesMu   sync.Mutex // serializes saveRoutes
	// metricsCtx ends the metrics' event subscriptions (closeAll).
	metricsCtx    context.Context
	metricsCancel context.CancelFunc
	// controlStopped: the API and the engine stopped (a handover).
	controlStopped bool
	// draining: the proxy stops (its listeners' errors are expected).
	draining atomic.Bool
	// hooksOff: webhooks are answered 503 (the engine stops, or the store
	// is handed over); hooksInFlight counts the webhooks being served.
	hooksOff      atomic.Bool
	hooksInFlight atomic.Int64
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
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = ":443"
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 2 << 30
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	mctx, mcancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, log: log, serveErr: make(chan error, 2), apiCancel: func() {}, metricsCtx: mctx, metricsCancel: mcancel}
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
	if s.inherited, err = takeInherited(); err != nil {
		return err
	}
	if s.inherited.handedOver() {
		// The older server keeps serving until this one reports ready; it
		// lets go of the data dir once it knows this binary runs.
		s.inherited.report("waiting")
		err = s.waitLockDataDir(ctx, handoverLockWait)
	} else {
		err = s.lockDataDir()
		if errors.Is(err, ErrDataDirBusy) && !lockOwnerAlive(s.cfg.DataDir) {
			// The server the lock file names is gone (killed), yet the lock
			// is held: a process it was starting can hold a copy of the
			// lock's descriptor for a moment (forked, not exec'd yet). A
			// server restarted at once after a crash waits for that.
			s.log.Warn("the data dir's lock is still held, though the server that took it is gone; waiting for it", "wait", deadOwnerLockWait, "err", err)
			err = s.waitLockDataDir(ctx, deadOwnerLockWait)
		}
	}
	if err != nil {
		return err
	}
	if s.store, err = store.Open(ctx, filepath.Join(s.cfg.DataDir, "moorage.db")); err != nil {
		return err
	}
	box, err := secrets.LoadOrCreate(filepath.Join(s.cfg.DataDir, "secrets.key"))
	if err != nil {
		return err
	}
	// Registry logins (`moorage registry login`), passwords sealed with
	// the secrets key: the swarm runtime pushes and its nodes pull with
	// the one of each image's registry host.
	logins := &reglogin.Logins{Store: s.store, Sealer: box}
	prt, err := process.New(process.Options{DataDir: s.cfg.DataDir, AppUsers: !s.cfg.AppsAsServerUser, Logger: s.log.With("runtime", "process")})
	if err != nil {
		return fmt.Errorf("process runtime: %w", err)
	}
	s.runtimes = map[string]runtime.Runtime{prt.Name(): prt}
	unavailable := map[string]error{}
	prefix := s.cfg.DockerPrefix
	dopts := docker.Options{DataDir: s.cfg.DataDir, Logger: s.log.With("runtime", "docker"), Prefix: prefix, Host: s.cfg.DockerHost}
	drt, err := docker.New(ctx, dopts)
	switch {
	case errors.Is(err, docker.ErrUnavailable):
		// The server still runs process apps; the docker runtime connects
		// at the first deploy (or other operation) that needs it, which
		// fails saying why while the engine does not answer.
		s.runtimes[docker.Name] = docker.NewLazy(dopts)
		s.log.Warn("docker engine not reachable: docker apps are managed once it is (the server keeps trying; no restart needed)", "err", err)
	case err != nil:
		unavailable[docker.Name] = err
		s.log.Warn("docker runtime not available", "err", err)
	default:
		s.runtimes[drt.Name()] = drt
	}
	if s.cfg.SwarmHost != "" {
		sopts := swarm.Options{DataDir: s.cfg.DataDir, Logger: s.log.With("runtime", "swarm"), Prefix: prefix,
			Host: s.cfg.SwarmHost, Nodes: s.cfg.SwarmNodes, Registry: s.cfg.SwarmRegistry,
			Credentials: logins.Lookup}
		srt, err := swarm.New(ctx, sopts)
		switch {
		case errors.Is(err, swarm.ErrUnavailable):
			// As for docker: the swarm apps are managed once the manager
			// answers, with no restart.
			s.runtimes[swarm.Name] = swarm.NewLazy(sopts)
			s.log.Warn("swarm manager not reachable: swarm apps are managed once it is (the server keeps trying; no restart needed)", "err", err)
		case err != nil:
			unavailable[swarm.Name] = err
			s.log.Warn("swarm runtime not available", "err", err)
		default:
			s.runtimes[srt.Name()] = srt
		}
	}
	if s.cfg.KubeConfig != "" || s.cfg.KubeContext != "" {
		kopts := kubernetes.RuntimeOptions{DataDir: s.cfg.DataDir, Logger: s.log.With("runtime", "kubernetes"), Prefix: prefix,
			Kubeconfig: s.cfg.KubeConfig, Context: s.cfg.KubeContext, Registry: s.cfg.KubeRegistry,
			StorageClass: s.cfg.KubeStorageClass, VolumeDir: s.cfg.KubeVolumeDir, DockerHost: s.cfg.DockerHost}
		krt, err := kubernetes.New(ctx, kopts)
		switch {
		case errors.Is(err, kubernetes.ErrUnavailable):
			// As for swarm: the kubernetes apps are managed once the API
			// server answers, with no restart.
			s.runtimes[kubernetes.Name] = kubernetes.NewLazy(kopts)
			s.log.Warn("kubernetes API server not reachable: kubernetes apps are managed once it is (the server keeps trying; no restart needed)", "err", err)
		case err != nil:
			unavailable[kubernetes.Name] = err
			s.log.Warn("kubernetes runtime not available", "err", err)
		default:
			s.runtimes[krt.Name()] = krt
		}
	}
	// Chunked request bodies of routes with max_body are spooled here
	// (unlinked as soon as opened) rather than in a /tmp that may be RAM.
	bodies := filepath.Join(s.cfg.DataDir, "proxy-bodies")
	_ = os.RemoveAll(bodies) // what a killed server left
	if err := os.MkdirAll(bodies, 0o700); err != nil {
		return fmt.Errorf("proxy body buffer directory: %w", err)
	}
	s.proxy = proxy.New(proxy.Options{Logger: s.log.With("component", "proxy"), AccessLog: s.cfg.AccessLog, BodyBufferDir: bodies,
		OnRoutes: func(string) { s.saveRoutes() }})

	// Bind before recovering, so a taken port fails the start before
	// anything changes (and before certificates are managed: challenges
	// must find these listeners, not bind their own).
	httpsOn := s.cfg.HTTPSAddr != HTTPSOff
	if httpsOn {
		if err := edge.CheckListeners(s.cfg.HTTPAddr, s.cfg.HTTPSAddr); err != nil {
			return err
		}
	}
	// Listeners passed by systemd (socket activation) or by the server
	// this one takes over from are used as they are: they outlive every
	// server process, so no connection is refused while none runs.
	if s.httpLn, err = s.listen(lnHTTP, s.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("proxy listen on %s: %w (use --http to pick another address)", s.cfg.HTTPAddr, err)
	}
	if httpsOn {
		if s.httpsLn, err = s.listen(lnHTTPS, s.cfg.HTTPSAddr); err != nil {
			return fmt.Errorf("https listen on %s: %w (use --https to pick another address, or --https off)", s.cfg.HTTPSAddr, err)
		}
	}
	if s.cfg.MetricsAddr != "" {
		if s.metricsLn, err = s.listen(lnMetrics, s.cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics listen on %s: %w (use --metrics to pick another address)", s.cfg.MetricsAddr, err)
		}
	}
	if s.apiLn, err = s.inherited.take(lnAPI, "unix", s.cfg.Socket); err != nil {
		return err
	}
	if s.apiLn != nil {
		s.keepSocket = true
	} else if s.apiLn, err = listenUnix(s.cfg.Socket, s.cfg.SocketGroup); err != nil {
		return err
	}
	s.inherited.rest(s.log)

	var challenge func(http.ResponseWriter, *http.Request) bool
	httpsPort := 0
	if httpsOn {
		co := certsOptions(s.cfg.Certs)
		co.DataDir, co.Logger = s.cfg.DataDir, s.log.With("component", "certs")
		co.HTTPAddr, co.HTTPSAddr = s.httpLn.Addr().String(), s.httpsLn.Addr().String()
		if s.certs, err = certs.New(co); err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		challenge = s.certs.HandleHTTPChallenge
		httpsPort = s.httpsLn.Addr().(*net.TCPAddr).Port
	}
	s.edge = edge.New(s.proxy, edge.Options{HTTPSPort: httpsPort, Challenge: challenge,
		HTTPSOff: !httpsOn, PlainWhenHTTPSOff: s.cfg.PlainWhenHTTPSOff, Logger: s.log.With("component", "edge")})

	sid := make([]byte, 8)
	rand.Read(sid)
	s.engine = engine.New(engine.Options{
		Store: s.store, Runtimes: s.runtimes, Unavailable: unavailable, Proxy: s.proxy,
		ServerID: hex.EncodeToString(sid), Logger: s.log.With("component", "engine"), Secrets: box,
		DataDir: s.cfg.DataDir, Certs: s.certs, Edge: s.edge,
	})
	// Backups are built on the engine: they register their restore step
	// and their recovery and scheduler hooks before it starts.
	s.backups = backup.New(backup.Options{Engine: s.engine, Store: s.store, DataDir: s.cfg.DataDir,
		Logger: s.log.With("component", "backup")})
	// So is pruning: `moorage prune` and the hourly log retention.
	s.pruner = prune.New(s.engine, s.store, s.log.With("component", "prune"))
	// Serve the recorded routes at once, and recover beside them.
	s.restoreRoutes(ctx)
	// The plain HTTP listener: the proxy's own front (fast path for simple
	// requests, hardened net/http for the rest), through the edge (ACME
	// challenges, HTTPS redirects, canonical hosts).
	// Stopping (or handing over), idle keep-alive connections get one more
	// request, answered with "Connection: close", before they are closed:
	// a request sent on one just as it closed would fail.
	s.front = s.proxy.NewServer(proxy.ServerOptions{Handler: s.dashboardFront(s.edge, false), CloseIdleAfter: closeIdleAfter})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.front.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
	if httpsOn {
		dashEdge := s.dashboardFront(s.edge, true)
		edge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Once the API serves, signed webhooks (POST /hooks/APP) are
			// taken before the app's routes.
			if h := s.hooks.Load(); h != nil {
				s.serveHook(*h, w, r)
				return
			}
			dashEdge.ServeHTTP(w, r)
		})
		// The HTTPS listener: the same front over TLS (HTTP/1.1; HTTP/2
		// and the rest go to net/http), with the certificate manager's
		// TLS config (certificates by SNI, ALPN h2, http/1.1 and
		// acme-tls/1 for TLS-ALPN-01 challenges), draining the same way.
		s.httpsFront = s.proxy.NewServer(proxy.ServerOptions{Handler: edge, CloseIdleAfter: closeIdleAfter})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpsFront.ServeTLS(s.httpsLn, s.certs.TLSConfig()); err != nil && !errors.Is(err, http.ErrServerClosed) && !s.draining.Load() {
				s.serveErr <- err
			}
		}()
	}
	if s.metricsLn != nil {
		mux := http.NewServeMux()
		var cl metrics.CertLister
		if s.certs != nil {
			cl = s.certs
		}
		col := metrics.New(s.store, cl)
		for _, rt := range s.runtimes {
			go col.Watch(rt.Events(s.metricsCtx))
		}
		mux.Handle("/metrics", col.Handler(s.proxy.MetricsHandler()))
		s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.serve(s.metricsSrv, s.metricsLn)
	}
	// The proxy serves: an older server handing over may stop accepting,
	// and a service manager may count the service as started.
	s.reportReady()

	if err := s.engine.Start(ctx); err != nil {
		// Recovery problems are recorded per app; the server still serves
		// the apps it could recover.
		s.log.Error("recovery finished with errors", "err", err)
	}
	// Pipelines the restart interrupted end as their deploys did.
	if err := pipeline.CloseInterrupted(ctx, s.store); err != nil {
		s.log.Error("closing interrupted pipelines", "err", err)
	}
	for name, rt := range s.runtimes {
		if l, ok := rt.(interface {
			Retry(first, limit time.Duration, onConnect func())
		}); ok {
			// The engine may answer later (a server started before Docker,
			// or while the swarm manager was down): then that runtime's
			// apps are brought back to their active releases, restarting
			// what stopped meanwhile.
			l.Retry(2*time.Second, 30*time.Second, func() { s.engine.RecoverRuntime(name) })
		}
	}
	s.removeStrayReleases(ctx)

	names := make([]string, 0, len(s.runtimes))
	for n := range s.runtimes {
		names = append(names, n)
	}
	apiSrv := &apiserver.Server{
		Engine: s.engine, Backups: s.backups, Pruner: s.pruner,
		Query: query.New(query.Options{Engine: s.engine, Store: s.store, Proxy: s.proxy,
			Logger: s.log.With("component", "query")}),
		UploadDir: filepath.Join(s.cfg.DataDir, "uploads"),
		Limits:    archive.Limits{MaxBytes: s.cfg.MaxUpload, MaxFiles: 200000},
		Version: api.Version{Version: version.String(), Schema: store.SchemaVersion(), Runtimes: names,
			DataDir: s.cfg.DataDir, HTTP: s.httpLn.Addr().String(), HTTPS: s.HTTPSAddr(), Features: api.ServerFeatures},
		Logger: s.log.With("component", "api"),
		Certs:  s.certs,
		Logins: logins, Registry: s.cfg.SwarmRegistry,
		Notifier: notify.New(notify.Options{Store: s.store, Sealer: box, Certs: s.certs,
			Logger: s.log.With("component", "notify")}),
	}
	os.RemoveAll(apiSrv.UploadDir) // leftovers of an interrupted upload
	apiCtx, apiCancel := context.WithCancel(context.Background())
	s.apiCancel = apiCancel
	apiHandler, err := s.startDashboard(apiSrv.Handler())
	if err != nil {
		return err
	}
	go apiSrv.Notifier.Run(apiCtx) // deliveries in flight end with the API
	if httpsOn {
		hooks := apiSrv.HooksHandler(s.dashboardFront(s.edge, true))
		s.hooks.Store(&hooks)
	}
	s.apiSrv = &http.Server{Handler: apiHandler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return apiCtx },
		// Who connects (SO_PEERCRED): the audit's owner of each operation.
		ConnContext: apiserver.ConnContext}

	s.serve(s.apiSrv, s.apiLn)
	s.log.Info("moorage server started", "version", version.String(), "data_dir", s.cfg.DataDir,
		"socket", s.cfg.Socket, "http", s.httpLn.Addr().String(), "https", s.HTTPSAddr(), "runtimes", strings.Join(names, ","))
	return nil
}

// HTTPSAddr is the HTTPS listener's bound address ("" when off).
func (s *Server) HTTPSAddr() string {
	if s.httpsLn == nil {
		return ""
	}
	return s.httpsLn.Addr().String()
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

// Shutdown stops the server gracefully, in an order that loses nothing:
//
//  1. The control API stops accepting, and running operations (deploys,
//     rollbacks, backups) are interrupted at once: a build or release task
//     is killed, a health gate abandoned. The journal is left as it is, so
//     the next start finishes or undoes each one exactly as after a crash;
//     its client gets a last event saying so. ctx bounds this.
//  2. What is left of the API (a `logs -f`) is cut after a short grace.
//  3. The proxy stops accepting and lets the requests in flight finish, for
//     up to Config.DrainTimeout: its own budget, whatever step 1 took.
//  4. With StopOnShutdown every instance stops, once nothing is in flight.
//
// Instances keep running otherwise, and the next start re-adopts them.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdownOnce.Do(func() {
		s.log.Info("shutting down")
		errs := s.stopControl(ctx)
		s.drainProxy(ctx)
		if s.engine != nil && s.cfg.StopOnShutdown {
			// Each instance's own stop_timeout bounds this.
			if e := s.engine.StopAll(context.WithoutCancel(ctx)); e != nil {
				errs = append(errs, e)
			}
		}
		s.wg.Wait()
		s.closeAll()
		err = errors.Join(errs...)
	})
	return err
}

// stopControl stops the control API and the engine (steps 1 and 2 of
// Shutdown); the proxy keeps serving. It runs once.
func (s *Server) stopControl(ctx context.Context) []error {
	if s.controlStopped {
		return nil
	}
	s.controlStopped = true
	s.stopHooks(ctx)
	if s.dashboardClose != nil {
		// Open event streams (over HTTPS and the socket) end now: the
		// graceful shutdowns below would wait for them until their
		// timeouts; the browsers reconnect, to the next server.
		s.dashboardClose()
	}
	var errs []error
	apiDone := make(chan struct{})
	if s.apiSrv != nil {
		go func() {
			defer close(apiDone)
			s.apiSrv.Shutdown(ctx) // waits for the handlers, see below
		}()
	} else {
		close(apiDone)
	}
	if s.engine != nil {
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			s.engine.Close()
		}()
		select {
		case <-closed:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("interrupt running operations: %w (the next start recovers them)", ctx.Err()))
		}
	}
	// The event streams of the interrupted operations end with their
	// last event; a follower of logs would wait forever.
	t := time.NewTimer(apiGrace)
	select {
	case <-apiDone:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	s.apiCancel()
	select {
	case <-apiDone:
	case <-ctx.Done():
		if s.apiSrv != nil {
			s.apiSrv.Close()
		}
		<-apiDone
	}
	return errs
}

// serveHook serves a request through hooks (the webhooks' handler in
// front of the edge), unless webhooks are off: then a webhook gets 503
// with Retry-After (the sender may redeliver it to the next server), and
// anything else goes on to the edge through hooks as always.
func (s *Server) serveHook(hooks http.Handler, w http.ResponseWriter, r *http.Request) {
	if _, ok := apiserver.IsHook(r); ok {
		s.hooksInFlight.Add(1)
		defer s.hooksInFlight.Add(-1)
		if s.hooksOff.Load() {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "moorage is restarting: deliver this webhook again in a few seconds", http.StatusServiceUnavailable)
			return
		}
	}
	hooks.ServeHTTP(w, r)
}

// hooksWait bounds how long stopHooks waits for the webhooks in flight.
const hooksWait = 10 * time.Second

// stopHooks turns webhooks off and waits for those in flight (up to
// hooksWait or ctx), before the engine stops and the store closes under
// them.
func (s *Server) stopHooks(ctx context.Context) {
	s.hooksOff.Store(true)
	deadline := time.Now().Add(hooksWait)
	for s.hooksInFlight.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// drainProxy stops the proxy's listeners and lets the requests in flight
// finish, for up to Config.DrainTimeout (step 3 of Shutdown).
func (s *Server) drainProxy(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainTimeout)
	defer cancel()
	var drain sync.WaitGroup
	s.draining.Store(true)
	for _, f := range []*proxy.Server{s.front, s.httpsFront} {
		if f != nil {
			drain.Go(func() {
				if e := f.Shutdown(dctx); e != nil {
					s.log.Warn("requests still in flight after the drain timeout were cut", "drain_timeout", s.cfg.DrainTimeout.String())
					f.Close()
				}
			})
		}
	}
	if s.metricsSrv != nil {
		drain.Go(func() {
			if e := s.metricsSrv.Shutdown(dctx); e != nil {
				s.metricsSrv.Close()
			}
		})
	}
	drain.Wait()
}

// closeIdleAfter is the proxy front's ServerOptions.CloseIdleAfter.
const closeIdleAfter = 2 * time.Second

// apiGrace is how long Shutdown lets API handlers finish on their own (an
// interrupted deploy's last events) before it cuts them.
const apiGrace = 2 * time.Second

func (s *Server) closeAll() {
	s.apiCancel()
	s.metricsCancel()
	if s.apiLn != nil {
		s.apiLn.Close()
		if !s.keepSocket {
			os.Remove(s.cfg.Socket)
		}
	}
	for _, ln := range []net.Listener{s.httpLn, s.httpsLn, s.metricsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if s.certs != nil {
		s.certs.Close()
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	s.inherited.closeAll()
	s.releaseDataDir()
}

// releaseDataDir closes the runtimes and the store and unlocks the data
// dir, for the next server (a handover) or for good.
func (s *Server) releaseDataDir() {
	for _, rt := range s.runtimes {
		rt.Close()
	}
	s.runtimes = nil
	if s.store != nil {
		s.store.Close()
		s.store = nil
	}
	if s.lockFile != nil {
		s.lockFile.Close()
		s.lockFile = nil
	}
}

// deadOwnerLockWait is how long a server waits for the data dir's lock
// when the server the lock file names is gone.
const deadOwnerLockWait = 15 * time.Second

// lockOwnerAlive reports whether the process the data dir's lock file
// names runs (true when it cannot tell).
func lockOwnerAlive(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, "moorage.lock"))
	if err != nil {
		return true
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return true
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	// "pid (comm) state ...": a zombie has released its files.
	i := bytes.LastIndexByte(st, ')')
	return i < 0 || i+2 >= len(st) || (st[i+2] != 'Z' && st[i+2] != 'X')
}

// lockHolders names the processes that hold f's lock, as /proc/locks
// says ("" when it cannot tell): the evidence when the holder is not the
// server the lock file names.
func lockHolders(f *os.File) string {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return ""
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return ""
	}
	var who []string
	for _, line := range strings.Split(string(locks), "\n") {
		// "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(st.Ino, 10) {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + fields[4] + "/comm")
		who = append(who, fmt.Sprintf("pid %s (%s)", fields[4], strings.TrimSpace(string(comm))))
	}
	if len(who) == 0 {
		return ""
	}
	return "; the lock is held by " + strings.Join(who, ", ")
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
		held := lockHolders(f)
		f.Close()
		return fmt.Errorf("%w: another moorage server (pid %s) uses %s%s; stop it first", ErrDataDirBusy, strings.TrimSpace(string(b[:n])), s.cfg.DataDir, held)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lockFile = f
	return nil
}

// listenUnix listens on a unix socket with mode 0660, owned by group when
// it is set, replacing a stale socket file (the data dir lock guarantees
// no live server owns it).
func listenUnix(path, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("--socket-group %s: %w (create the group, or name an existing one)", group, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("--socket-group %s: gid %q: %w", group, g.Gid, err)
		}
	}
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
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("give the socket to group %s: %w (the server must run as root or be a member of it)", group, err)
		}
	}
	return ln, nil
}
