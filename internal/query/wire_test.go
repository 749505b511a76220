package query

import (
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
	"github.com/moorage/moorage/internal/testutil/wiretest"
)

var sameJSON = wiretest.SameJSON

func TestWireJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	in := runtime.Instance{ID: "shop-web-v3-1", App: "shop", Service: "web", Release: "v3", Index: 1, Kind: runtime.KindService,
		Hash: "abc", State: runtime.StateRestarting, Addr: "127.0.0.1:4000", Host: "web", Port: 8080, Node: "node2",
		Unreachable: true, Paused: true, Health: "starting", PID: 42, StartedAt: at, Restarts: 3, ExitCode: -1}
	sameJSON(t, in, instanceOf(in))
	l := store.Lock{App: "shop", Owner: "alice@laptop (pid 1)", Operation: "deploy v3", DeployID: 7, Server: "s1",
		AcquiredAt: at, HeartbeatAt: at.Add(time.Second)}
	sameJSON(t, l, lockOf(&l))
	e := store.AppEvent{ID: 9, App: "shop", Time: at, Kind: store.EventCrash, Instance: "shop-web-v3-1", Message: "exit status 2"}
	sameJSON(t, e, eventsOf([]store.AppEvent{e})[0])
	if eventsOf(nil) != nil {
		t.Error("no events should stay nil (omitted)")
	}
}
