package apiserver

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/store"
)

func (s *Server) registryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/registries", s.registryLogins)
	mux.HandleFunc("POST /v1/registries", s.registryLogin)
	mux.HandleFunc("DELETE /v1/registries/{host}", s.registryLogout)
}

// registryHost is the host of the server's --swarm-registry ("" when
// none).
func (s *Server) registryHost() string {
	if s.Registry == "" {
		return ""
	}
	return api.RegistryHostOf(s.Registry + "/x")
}

func (s *Server) loginOf(l *store.RegistryLogin) api.RegistryLogin {
	return api.RegistryLogin{Host: l.Host, Username: l.Username, Created: l.CreatedAt, Used: l.Host == s.registryHost()}
}

func (s *Server) registryLogins(w http.ResponseWriter, r *http.Request) {
	if s.Logins == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this server keeps no registry logins")
		return
	}
	ls, err := s.Logins.List(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.RegistryLogins{Registry: s.Registry, Logins: []api.RegistryLogin{}}
	for _, l := range ls {
		out.Logins = append(out.Logins, s.loginOf(l))
	}
	writeJSON(w, http.StatusOK, out)
}

// registryLogin stores a login. The request's password is sealed at once
// and never logged nor answered back.
func (s *Server) registryLogin(w http.ResponseWriter, r *http.Request) {
	var req api.RegistryLoginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		// The decoder's error names no value.
		writeError(w, http.StatusBadRequest, "bad_request", "registry login request: not valid JSON")
		return
	}
	if s.Logins == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this server keeps no registry logins")
		return
	}
	if req.Host == "" {
		req.Host = s.registryHost()
		if req.Host == "" {
			writeError(w, http.StatusBadRequest, "bad_request", "this server has no --swarm-registry: say which registry, `moorage registry login HOST -u USER --password-stdin`")
			return
		}
	}
	l, err := s.Logins.Set(r.Context(), req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.log().Info("registry login stored", "host", l.Host, "username", l.Username, "owner", owner(r))
	writeJSON(w, http.StatusOK, s.loginOf(l))
}

func (s *Server) registryLogout(w http.ResponseWriter, r *http.Request) {
	if s.Logins == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this server keeps no registry logins")
		return
	}
	host := r.PathValue("host")
	if host == "-" {
		host = s.registryHost()
	}
	if host == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "this server has no --swarm-registry: say which registry, `moorage registry logout HOST`")
		return
	}
	if _, err := api.RegistryHost(host); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err := s.Logins.Remove(r.Context(), host); err != nil {
		writeErr(w, err)
		return
	}
	s.log().Info("registry login removed", "host", host, "owner", owner(r))
	w.WriteHeader(http.StatusNoContent)
}
