package apiserver

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/store"
)

// dashboardRoutes are the routes the web dashboard (internal/dashboard)
// and `moorage dashboard user` use: users, logins, the audit, disk use.
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/dashboard/users", s.dashboardUsers)
	mux.HandleFunc("POST /v1/dashboard/users", s.putDashboardUser)
	mux.HandleFunc("DELETE /v1/dashboard/users/{name}", s.deleteDashboardUser)
	mux.HandleFunc("POST /v1/dashboard/login", s.dashboardLogin)
	mux.HandleFunc("GET /v1/dashboard/audit", s.listAudit)
	mux.HandleFunc("POST /v1/dashboard/audit", s.addAudit)
	mux.HandleFunc("GET /v1/server/disk", s.disk)
	mux.HandleFunc("GET /v1/server/runtimes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Engine.RuntimesHealth(r.Context()))
	})
	mux.HandleFunc("GET /v1/server/traffic", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Engine.Traffic())
	})
}

var userName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)

// BcryptCost is the cost of dashboard password hashes.
const BcryptCost = 12

// MinPasswordLen is the shortest dashboard password accepted.
const MinPasswordLen = 10

func (s *Server) putDashboardUser(w http.ResponseWriter, r *http.Request) {
	var req api.DashboardUserRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if !userName.MatchString(req.Name) {
		writeError(w, http.StatusBadRequest, "bad_request", "user name: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
		return
	}
	if req.Role != api.RoleOperator && req.Role != api.RoleReadonly {
		writeError(w, http.StatusBadRequest, "bad_request", "--role must be operator or readonly")
		return
	}
	if len(req.Password) < MinPasswordLen || len(req.Password) > 72 {
		writeError(w, http.StatusBadRequest, "bad_request", "the password must be 10 to 72 bytes long (bcrypt reads at most 72)")
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), BcryptCost)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := s.Engine.Store().PutDashboardUser(r.Context(), store.DashboardUser{Name: req.Name, Role: req.Role, Hash: string(hash)}); err != nil {
		writeErr(w, err)
		return
	}
	s.audit(r.Context(), api.AuditEntry{User: owner(r), IP: "cli", Action: "user add", Target: req.Name + " (" + req.Role + ")", Outcome: "ok"})
	writeJSON(w, http.StatusOK, api.DashboardUser{Name: req.Name, Role: req.Role})
}

func (s *Server) dashboardUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.Engine.Store().ListDashboardUsers(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []api.DashboardUser{}
	for _, u := range us {
		out = append(out, api.DashboardUser{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, Credential: u.Credential})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteDashboardUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Engine.Store().DeleteDashboardUser(r.Context(), name); err != nil {
		writeErr(w, err)
		return
	}
	s.audit(r.Context(), api.AuditEntry{User: owner(r), IP: "cli", Action: "user remove", Target: name, Outcome: "ok"})
	writeJSON(w, http.StatusOK, struct{}{})
}

// dummyHash is compared against when the user does not exist, so that a
// wrong name takes as long as a wrong password. It is made at the first
// login, not at package init: bcrypt at BcryptCost takes about a third of
// a second of CPU, which every process of the binary paid at start (each
// CLI command, each instance's shim).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user, no such password"), BcryptCost)
	return h
})

func (s *Server) dashboardLogin(w http.ResponseWriter, r *http.Request) {
	var req api.DashboardLogin
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.Name) > 64 || len(req.Password) > 72 {
		// No user has such a name or password (putDashboardUser): not
		// worth a bcrypt.
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong user name or password")
		return
	}
	u, err := s.Engine.Store().GetDashboardUser(r.Context(), req.Name)
	hash := dummyHash()
	if err == nil {
		hash = []byte(u.Hash)
	} else if !errors.Is(err, store.ErrNotFound) {
		writeErr(w, err)
		return
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) == nil
	if err != nil || !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong user name or password")
		return
	}
	writeJSON(w, http.StatusOK, api.DashboardUser{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, Credential: u.Credential})
}

func (s *Server) addAudit(w http.ResponseWriter, r *http.Request) {
	var e api.AuditEntry
	if !decodeBody(w, r, &e) {
		return
	}
	if e.User == "" || e.Action == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "an audit entry needs a user and an action")
		return
	}
	if err := s.Engine.Store().AddAudit(r.Context(), store.AuditEntry{User: e.User, IP: e.IP, Action: e.Action, Target: e.Target, Outcome: e.Outcome}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) audit(ctx context.Context, e api.AuditEntry) {
	if err := s.Engine.Store().AddAudit(ctx, store.AuditEntry{User: e.User, IP: e.IP, Action: e.Action, Target: e.Target, Outcome: e.Outcome}); err != nil {
		s.log().Error("audit", "err", err)
	}
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	es, err := s.Engine.Store().ListAudit(r.Context(), limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []api.AuditEntry{}
	for _, e := range es {
		out = append(out, api.AuditEntry{At: e.At, User: e.User, IP: e.IP, Action: e.Action, Target: e.Target, Outcome: e.Outcome})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) disk(w http.ResponseWriter, r *http.Request) {
	dd := s.Version.DataDir
	out := api.DiskUsage{DataDir: dd}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out.Artifacts = du(ctx, filepath.Join(dd, "releases"))
	out.Logs = du(ctx, filepath.Join(dd, "logs"))
	out.Backups = du(ctx, filepath.Join(dd, "backups"))
	out.Volumes = du(ctx, filepath.Join(dd, "volumes"))
	writeJSON(w, http.StatusOK, out)
}

// du sums the sizes of the regular files under dir (0 when it is absent).
func du(ctx context.Context, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
