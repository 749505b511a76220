package query

import (
	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// The server's own types, converted to the API's wire types (internal/api)
// that Status answers with. The wire types' JSON is the one the server's
// types had: old clients and the dashboard read it.

// instanceOf converts an instance a runtime reports.
func instanceOf(in runtime.Instance) api.Instance {
	return api.Instance{
		ID: in.ID, App: in.App, Service: in.Service, Release: in.Release, Index: in.Index, Kind: string(in.Kind), Hash: in.Hash,
		State: string(in.State), Addr: in.Addr, Host: in.Host, Port: in.Port,
		Node: in.Node, Unreachable: in.Unreachable, Paused: in.Paused, Health: in.Health,
		PID: in.PID, StartedAt: in.StartedAt, Restarts: in.Restarts, ExitCode: in.ExitCode,
	}
}

// lockOf converts an app's lock.
func lockOf(l *store.Lock) *api.Lock { return (*api.Lock)(l) }

// eventsOf converts an app's recorded events.
func eventsOf(es []store.AppEvent) []api.AppEvent {
	if es == nil {
		return nil
	}
	out := make([]api.AppEvent, len(es))
	for i, e := range es {
		out[i] = api.AppEvent(e)
	}
	return out
}
