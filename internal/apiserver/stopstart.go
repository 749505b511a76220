package apiserver

import (
	"net/http"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/engine"
)

// stopStart serves POST /v1/apps/{app}/stop and /start.
func (s *Server) stopStart(stop bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.StopStartRequest
		if !decodeBody(w, r, &req) {
			return
		}
		app, ok := s.app(w, r)
		if !ok {
			return
		}
		er := engine.StopStartRequest{App: app, Owner: owner(r), Wait: req.Wait}
		if stop {
			stream(w, r, s.Engine.StopApp(er))
		} else {
			stream(w, r, s.Engine.StartApp(er))
		}
	}
}

// refuseStopped answers 409 for a maintenance change of an app stopped with
// moorage stop (its maintenance page is the stop's).
func (s *Server) refuseStopped(w http.ResponseWriter, r *http.Request) bool {
	app := r.PathValue("app")
	stopped, err := s.Engine.Stopped(r.Context(), app)
	if err != nil {
		writeErr(w, err)
		return true
	}
	if !stopped {
		return false
	}
	writeError(w, http.StatusConflict, "stopped", app+" is stopped (moorage stop): its maintenance page stays until `moorage start -a "+app+"`")
	return true
}
