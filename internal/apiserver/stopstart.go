package apiserver

import (
	"context"
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
		er := engine.StopStartRequest{App: app, Owner: owner(r), Wait: req.Wait, DryRun: req.DryRun}
		var op *engine.Op
		action := "start"
		if stop {
			op, action = s.Engine.StopApp(er), "stop"
		} else {
			op = s.Engine.StartApp(er)
		}
		s.auditOp(r, action, app, req.DryRun, op)
		stream(w, r, op)
	}
}

// destroy serves POST /v1/apps/{app}/destroy.
func (s *Server) destroy(w http.ResponseWriter, r *http.Request) {
	var req api.DestroyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	op := s.Engine.Destroy(engine.DestroyRequest{App: app, Owner: owner(r), Volumes: req.Volumes, Yes: req.Yes, Wait: req.Wait, DryRun: req.DryRun})
	action := "apps destroy"
	if req.Volumes {
		action += " --volumes"
	}
	s.auditOp(r, action, app, req.DryRun || !req.Yes, op)
	stream(w, r, op)
}

// accessoryOp serves POST /v1/apps/{app}/accessories/{name}/ACTION.
func (s *Server) accessoryOp(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.AccessoryRequest
		if !decodeBody(w, r, &req) {
			return
		}
		app, ok := s.app(w, r)
		if !ok {
			return
		}
		name := r.PathValue("name")
		var op *engine.Op
		if action == engine.AccessoryRestart {
			op = s.Engine.RestartAccessory(engine.AccessoryRestartRequest{App: app, Name: name, Owner: owner(r), Wait: req.Wait, DryRun: req.DryRun})
		} else {
			op = s.Engine.AccessoryOp(engine.AccessoryOpRequest{App: app, Name: name, Owner: owner(r), Action: action, Volumes: req.Volumes, Wait: req.Wait, DryRun: req.DryRun})
		}
		what := "accessory " + action
		if req.Volumes && action == engine.AccessoryRemove {
			what += " --volumes"
		}
		s.auditOp(r, what, app+" "+name, req.DryRun, op)
		stream(w, r, op)
	}
}

// auditOp records op in the audit, with who asked (the socket peer's
// credentials), once it ends, whether or not the client still follows
// it. A dry run changes nothing and is not recorded.
func (s *Server) auditOp(r *http.Request, action, target string, dryRun bool, op *engine.Op) {
	if dryRun {
		return
	}
	who := owner(r)
	go func() {
		status, err := op.Wait(context.Background())
		outcome := status
		if err != nil {
			outcome = clean(status+": "+err.Error(), 500)
		}
		s.audit(context.Background(), api.AuditEntry{User: who, IP: "cli", Action: action, Target: target, Outcome: outcome})
	}()
}

// writeStopped answers the refusal of an operation on a stopped app.
func writeStopped(w http.ResponseWriter, app string) {
	writeError(w, http.StatusConflict, "stopped", app+" is stopped (moorage stop): its maintenance page stays until `moorage start -a "+app+"`")
}
