package apiserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/store"
)

func (s *Server) notifyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/notifiers", s.notifiers)
	mux.HandleFunc("POST /v1/notifiers", s.addNotifier)
	mux.HandleFunc("DELETE /v1/notifiers/{id}", s.removeNotifier)
	mux.HandleFunc("POST /v1/notifiers/{id}/test", s.testNotifier)
}

func notifierOf(n *store.Notifier) api.Notifier {
	return api.Notifier{ID: n.ID, App: n.App, Kind: n.Kind, Label: n.Label, Created: n.CreatedAt, LastOK: n.LastOKAt,
		LastError: n.LastError, LastErrorAt: n.LastErrorAt, Failures: n.Failures, Failing: n.Failing()}
}

// notifiers lists the notifiers of ?app= (its own and the server-wide
// ones), or all without it.
func (s *Server) notifiers(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	if app == "" {
		app = "*"
	}
	ns, err := s.Engine.Store().ListNotifiers(r.Context(), app)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []api.Notifier{}
	for _, n := range ns {
		out = append(out, notifierOf(n))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addNotifier(w http.ResponseWriter, r *http.Request) {
	var req struct {
		App    string             `json:"app"`
		Target api.NotifierTarget `json:"target"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "notifier request: "+err.Error())
		return
	}
	if s.Notifier == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this server has no notifier")
		return
	}
	n, err := s.Notifier.Add(r.Context(), req.App, req.Target)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.log().Info("notifier added", "id", n.ID, "app", n.App, "to", n.Label, "owner", owner(r))
	writeJSON(w, http.StatusCreated, notifierOf(n))
}

func notifierID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "notifier id must be a number (see `moorage notify ls`)")
		return 0, false
	}
	return id, true
}

func (s *Server) removeNotifier(w http.ResponseWriter, r *http.Request) {
	id, ok := notifierID(w, r)
	if !ok {
		return
	}
	if err := s.Engine.Store().RemoveNotifier(r.Context(), id); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// testNotifier sends a test notification now and answers its outcome.
func (s *Server) testNotifier(w http.ResponseWriter, r *http.Request) {
	id, ok := notifierID(w, r)
	if !ok {
		return
	}
	if s.Notifier == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this server has no notifier")
		return
	}
	if err := s.Notifier.Test(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeErr(w, err)
			return
		}
		writeError(w, http.StatusBadGateway, "delivery_failed", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
