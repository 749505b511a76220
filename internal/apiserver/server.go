// Package apiserver serves moorage's control API (the wire types live in
// internal/api): HTTP + JSON over the server's unix socket or an
// ssh-forwarded stream. Long operations answer with newline-delimited JSON
// events.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/backup"
	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/notify"
	"github.com/moorage/moorage/internal/prune"
	"github.com/moorage/moorage/internal/query"
	"github.com/moorage/moorage/internal/reglogin"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Server serves the control API.
type Server struct {
	Engine    *engine.Engine
	Backups   *backup.Manager
	Pruner    *prune.Manager
	Query     *query.Reader
	UploadDir string // where uploads are unpacked (under the data dir)
	Limits    archive.Limits
	Version   api.Version
	Logger    *slog.Logger
	Certs     *certs.Manager // nil: HTTPS is off
	Notifier  *notify.Notifier
	// Logins are the registry logins; Registry is the server's
	// --swarm-registry (HOST[:PORT][/NS], "" when none), whose host a
	// login without HOST is for.
	Logins   *reglogin.Logins
	Registry string
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", s.version)
	mux.HandleFunc("GET /v1/apps", s.apps)
	mux.HandleFunc("POST /v1/deploys", s.deploy)
	mux.HandleFunc("POST /v1/checks", s.check)
	s.notifyRoutes(mux)
	s.registryRoutes(mux)
	mux.HandleFunc("POST /v1/pipelines", s.pipelineRun)
	s.hookRoutes(mux)
	mux.HandleFunc("GET /v1/apps/{app}", s.status)
	mux.HandleFunc("POST /v1/apps/{app}/rollback", s.rollback)
	mux.HandleFunc("GET /v1/apps/{app}/releases", s.releases)
	mux.HandleFunc("GET /v1/apps/{app}/export/kubernetes", s.exportKubernetes)
	mux.HandleFunc("GET /v1/apps/{app}/deploys", s.deploys)
	mux.HandleFunc("GET /v1/apps/{app}/deploys/{id}", s.deployOne)
	mux.HandleFunc("GET /v1/apps/{app}/logs", s.logs)
	mux.HandleFunc("GET /v1/apps/{app}/config", s.config)
	mux.HandleFunc("POST /v1/apps/{app}/config", s.changeConfig)
	mux.HandleFunc("POST /v1/apps/{app}/scale", s.scale)
	mux.HandleFunc("POST /v1/apps/{app}/stop", s.stopStart(true))
	mux.HandleFunc("POST /v1/apps/{app}/start", s.stopStart(false))
	mux.HandleFunc("POST /v1/apps/{app}/run", s.run)
	mux.HandleFunc("GET /v1/apps/{app}/backups", s.backups)
	mux.HandleFunc("POST /v1/apps/{app}/backups", s.createBackup)
	mux.HandleFunc("POST /v1/apps/{app}/backups/import", s.importBackup)
	mux.HandleFunc("POST /v1/apps/{app}/backups/{id}/restore", s.restoreBackup)
	mux.HandleFunc("POST /v1/apps/{app}/backups/{id}/verify", s.verifyBackup)
	mux.HandleFunc("POST /v1/apps/{app}/prune", s.prune)
	mux.HandleFunc("DELETE /v1/apps/{app}/volumes/{name}", s.removeVolume)
	mux.HandleFunc("GET /v1/certs", s.certs)
	mux.HandleFunc("POST /v1/certs/renew", s.renewCert)
	mux.HandleFunc("GET /v1/ca", s.ca)
	mux.HandleFunc("POST /v1/apps/{app}/accessories/{name}/restart", s.accessoryOp(engine.AccessoryRestart))
	mux.HandleFunc("POST /v1/apps/{app}/accessories/{name}/stop", s.accessoryOp(engine.AccessoryStop))
	mux.HandleFunc("POST /v1/apps/{app}/accessories/{name}/start", s.accessoryOp(engine.AccessoryStart))
	mux.HandleFunc("POST /v1/apps/{app}/accessories/{name}/remove", s.accessoryOp(engine.AccessoryRemove))
	mux.HandleFunc("POST /v1/apps/{app}/destroy", s.destroy)
	mux.HandleFunc("PUT /v1/apps/{app}/maintenance", s.maintenanceOn)
	mux.HandleFunc("DELETE /v1/apps/{app}/maintenance", s.maintenanceOff)
	s.dashboardRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API endpoint %s %s (is the client newer than the server? server: %s)", r.Method, r.URL.Path, s.Version.Version))
	})
	return mux
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, api.Error{Error: msg, Code: kind})
}

// writeErr maps an error to a status code.
func writeErr(w http.ResponseWriter, err error) {
	var le *store.LockedError
	switch {
	case errors.As(err, &le):
		writeError(w, http.StatusConflict, "locked", err.Error())
	case errors.Is(err, store.ErrNotFound), errors.Is(err, engine.ErrNoRelease):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, spec.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid_spec", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Version)
}

func (s *Server) apps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.Engine.Store().ListApps(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []api.App{}
	for _, a := range apps {
		out = append(out, api.App{Name: a.Name, Runtime: a.Runtime, Active: store.ReleaseID(a.Current)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.Query.Status(r.Context(), r.PathValue("app"))
	if err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func appErr(r *http.Request, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("app %q does not exist on this server (deploy it first, or check -a): %w", r.PathValue("app"), store.ErrNotFound)
	}
	return err
}

func (s *Server) releases(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	rels, err := s.Engine.Store().ListReleases(r.Context(), app)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []api.Release{}
	gone := s.Engine.ArtifactsGone(r.Context(), rels)
	for _, rel := range rels {
		ar := releaseOf(rel)
		ar.Pruned = gone[rel.Version]
		out = append(out, ar)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deploys(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	ds, err := s.Engine.Store().ListDeploys(r.Context(), app, limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []api.Deploy{}
	for _, d := range ds {
		out = append(out, deployOf(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deployOne(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "deploy id must be a number")
		return
	}
	d, err := s.Engine.Store().GetDeploy(r.Context(), id)
	if err != nil || d.App != r.PathValue("app") {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no deploy #%d of %s", id, r.PathValue("app")))
		return
	}
	writeJSON(w, http.StatusOK, deployOf(d))
}

// deploy receives an upload (a gzip tar of the app directory), checks its
// spec, and streams the deploy's events. The deploy goes on if the client
// goes away.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := os.MkdirAll(s.UploadDir, 0o700); err != nil {
		writeErr(w, err)
		return
	}
	dir, err := os.MkdirTemp(s.UploadDir, "upload-")
	if err != nil {
		writeErr(w, err)
		return
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	st, err := archive.Unpack(r.Body, dir, s.Limits)
	if err != nil {
		code, kind := http.StatusBadRequest, "bad_request"
		if errors.Is(err, archive.ErrTooLarge) {
			code, kind = http.StatusRequestEntityTooLarge, "too_large"
		}
		writeError(w, code, kind, "upload: "+err.Error())
		return
	}
	specName := r.Header.Get(api.HeaderSpec)
	if specName == "" {
		specName = "moorage.yaml"
	}
	if !filepath.IsLocal(specName) {
		writeError(w, http.StatusBadRequest, "bad_request", "spec file must be inside the uploaded directory")
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, specName))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_spec", fmt.Sprintf("the upload has no %s: create one with `moorage init`", specName))
		return
	}
	rt := q.Get("runtime")
	if rt != "" && !spec.KnownRuntime(rt) {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("--runtime %q: use docker, swarm, kubernetes or process", rt))
		return
	}
	sp, err := spec.ParseFor(specName, data, rt)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_spec", err.Error())
		return
	}
	if app := q.Get("app"); app != "" && app != sp.App {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("-a %s does not match app %q in %s", app, sp.App, specName))
		return
	}
	keep = true
	op := s.Engine.Deploy(engine.DeployRequest{
		Spec: sp, SpecYAML: string(data), ContextDir: dir, Runtime: rt,
		Owner: owner(r), Wait: q.Get("wait") == "1" || q.Get("wait") == "true",
		DryRun: q.Get(api.QueryDryRun) == "1" || q.Get(api.QueryDryRun) == "true",
		Commit: commitOf(r),
	})
	s.log().Info("deploy", "app", sp.App, "owner", owner(r), "files", st.Files, "bytes", st.Bytes)
	stream(w, r, op)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var req api.RollbackRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "rollback request: "+err.Error())
			return
		}
	}
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	op := s.Engine.Rollback(engine.RollbackRequest{App: app, To: req.To, Owner: owner(r), Wait: req.Wait, RunTasks: req.RunTasks, DryRun: req.DryRun})
	stream(w, r, op)
}

// stream writes an operation's events as NDJSON until it ends or the
// client goes away (the operation goes on).
func stream(w http.ResponseWriter, r *http.Request, op *engine.Op) {
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for i := 0; ; i++ {
		ev, ok := op.Next(r.Context(), i)
		if !ok {
			return
		}
		if err := enc.Encode(ev); err != nil {
			return
		}
		rc.Flush()
	}
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := query.LogsRequest{
		App: r.PathValue("app"), Service: q.Get("service"), Release: q.Get("release"),
		Follow: q.Get("follow") == "1" || q.Get("follow") == "true",
	}
	if n := q.Get("n"); n != "" {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, "bad_request", "-n must be a whole number ≥ 0")
			return
		}
		req.Tail = v
	}
	if since := q.Get("since"); since != "" {
		t, err := parseSince(since)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		req.Since = t
	}
	if _, err := s.Engine.Store().GetApp(r.Context(), req.App); err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	err := s.Query.Logs(r.Context(), req, func(l runtime.LogLine) error {
		if err := enc.Encode(logLineOf(l)); err != nil {
			return err
		}
		if req.Follow {
			return rc.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		enc.Encode(map[string]string{"error": err.Error()})
	}
}

// parseSince accepts a duration ("1h", "30m") or an RFC 3339 time.
func parseSince(s string) (time.Time, error) {
	if d, err := spec.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration like 1h or 30m, or a time like 2026-11-22T10:00:00Z", s)
}

// decodeBody decodes a small JSON request body.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// Never echo the body: it may hold secrets.
		writeError(w, http.StatusBadRequest, "bad_request", "malformed request body (JSON expected)")
		return false
	}
	return true
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	vars, err := s.Engine.Config(r.Context(), r.PathValue("app"))
	if err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	writeJSON(w, http.StatusOK, vars)
}

func (s *Server) changeConfig(w http.ResponseWriter, r *http.Request) {
	var req api.ConfigRequest
	if !decodeBody(w, r, &req) {
		return
	}
	app := r.PathValue("app")
	op := s.Engine.ChangeConfig(engine.ConfigRequest{
		App: app, Set: req.Set, Secrets: req.Secrets, Unset: req.Unset,
		Deploy: !req.NoDeploy, Owner: owner(r), Wait: req.Wait, DryRun: req.DryRun,
	})
	stream(w, r, op)
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	var req api.ScaleRequest
	if !decodeBody(w, r, &req) {
		return
	}
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	op := s.Engine.Scale(engine.ScaleRequest{App: app, Replicas: req.Replicas, Owner: owner(r), Wait: req.Wait, DryRun: req.DryRun})
	stream(w, r, op)
}

func (s *Server) backups(w http.ResponseWriter, r *http.Request) {
	bs, err := s.Backups.Backups(r.Context(), r.PathValue("app"))
	if err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	out := []api.Backup{}
	for _, b := range bs {
		out = append(out, backupOf(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) {
	var req api.BackupRequest
	if !decodeBody(w, r, &req) {
		return
	}
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	if req.To != "" && !filepath.IsAbs(req.To) {
		writeError(w, http.StatusBadRequest, "bad_request", "--to must be an absolute directory on the server")
		return
	}
	stream(w, r, s.Backups.BackupOp(backup.BackupRequest{App: app, Volumes: req.Volumes, Accessories: req.Accessories, To: req.To, Trigger: "manual", Owner: owner(r)}))
}

func (s *Server) restoreBackup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Wait bool `json:"wait,omitempty"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	stream(w, r, s.Backups.Restore(backup.RestoreRequest{App: r.PathValue("app"), ID: r.PathValue("id"), Owner: owner(r), Wait: req.Wait}))
}

func (s *Server) importBackup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		File string `json:"file"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	b, err := s.Backups.ImportBackup(r.Context(), app, req.File)
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, err) // an unknown app: 404
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, backupOf(b))
}

func (s *Server) verifyBackup(w http.ResponseWriter, r *http.Request) {
	stream(w, r, s.Backups.VerifyOp(r.PathValue("app"), r.PathValue("id")))
}

func (s *Server) prune(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DryRun bool `json:"dry_run,omitempty"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	rep, err := s.Pruner.Prune(r.Context(), r.PathValue("app"), req.DryRun)
	if err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) maintenanceOn(w http.ResponseWriter, r *http.Request) {
	var m engine.Maintenance
	if !decodeBody(w, r, &m) {
		return
	}
	if len(m.HTML) > 1<<20 {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the maintenance page may be at most 1 MiB")
		return
	}
	m.Stopped, m.Destroying = false, false // only moorage stop and apps destroy set them
	if s.setMaintenance(w, r, &m) {
		writeJSON(w, http.StatusOK, m)
	}
}

func (s *Server) maintenanceOff(w http.ResponseWriter, r *http.Request) {
	if s.setMaintenance(w, r, nil) {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// setMaintenance switches the app's maintenance page, answering the
// refusal of a stopped app (checked by the store's update itself, not
// before it, so a racing `moorage stop` cannot lose its page) or another
// error.
func (s *Server) setMaintenance(w http.ResponseWriter, r *http.Request, m *engine.Maintenance) bool {
	app := r.PathValue("app")
	err := s.Engine.SetUserMaintenance(r.Context(), app, m)
	switch {
	case errors.Is(err, store.ErrStopped):
		writeStopped(w, app)
		return false
	case err != nil:
		writeErr(w, appErr(r, err))
		return false
	}
	return true
}

// app returns the app a request names, answering 404 when it does not
// exist.
func (s *Server) app(w http.ResponseWriter, r *http.Request) (string, bool) {
	app := r.PathValue("app")
	if _, err := s.Engine.Store().GetApp(r.Context(), app); err != nil {
		writeErr(w, appErr(r, err))
		return "", false
	}
	return app, true
}

// httpsOff answers certificate requests to a server without HTTPS.
const httpsOff = "HTTPS is off on this server (it was started with --https off): it has no certificates; restart it with --https :443 (or another address) to serve HTTPS"

func (s *Server) certs(w http.ResponseWriter, r *http.Request) {
	out := []api.CertInfo{}
	if s.Certs != nil {
		app := r.URL.Query().Get("app")
		for _, c := range s.Certs.List() {
			if app == "" || c.App == app {
				out = append(out, certInfoOf(c))
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) renewCert(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if s.Certs == nil {
		writeError(w, http.StatusConflict, "https_off", httpsOff)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := s.Certs.Renew(ctx, req.Name); err != nil {
		code, kind := http.StatusBadGateway, "acme"
		if errors.Is(err, certs.ErrNotManaged) {
			code, kind = http.StatusNotFound, "not_found"
		}
		writeError(w, code, kind, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) ca(w http.ResponseWriter, r *http.Request) {
	if s.Certs == nil {
		writeError(w, http.StatusConflict, "https_off", httpsOff)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.Certs.RootPEM())
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	if err := s.Engine.RemoveVolume(r.Context(), app, r.PathValue("name"), owner(r)); err != nil {
		var le *store.LockedError
		if errors.As(err, &le) || errors.Is(err, store.ErrNotFound) {
			writeErr(w, err)
			return
		}
		writeError(w, http.StatusConflict, "in_use", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
