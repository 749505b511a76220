package query

import (
	"context"
	"sort"

	"github.com/moorage/moorage/internal/api"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// Status returns app's state: its active release, what runs, and recent
// trouble.
func (q *Reader) Status(ctx context.Context, app string) (*api.AppStatus, error) {
	a, err := q.st.GetApp(ctx, app)
	if err != nil {
		return nil, err
	}
	st := &api.AppStatus{App: a.Name, Runtime: a.Runtime, Instances: []api.InstanceStatus{}}
	if a.Current != 0 {
		rel, err := q.st.GetRelease(ctx, app, a.Current)
		if err != nil {
			return nil, err
		}
		st.Active, st.Cause, st.Since, st.Formation = rel.ID(), rel.Cause, rel.CreatedAt, rel.Formation
		st.Runtime = rel.Runtime
	}
	warm, warmUntil := q.e.Warm(ctx, app)
	health := map[string]proxy.TargetStatus{}
	for _, ts := range q.proxy.Status(app) {
		health[ts.ID] = ts
	}
	for name, rt := range q.e.Runtimes() {
		ins, err := rt.List(ctx, runtime.Filter{App: app})
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			is := api.InstanceStatus{Instance: instanceOf(in), Runtime: name}
			if ts, ok := health[in.ID]; ok {
				is.Routed = ts.Routed
				is.Health = "healthy"
				if !ts.Healthy {
					is.Health, is.LastError = "unhealthy", ts.LastError
				}
			}
			if warm != "" && in.Release == warm && in.Kind == runtime.KindService && !is.Routed {
				is.WarmUntil = warmUntil
			}
			st.Instances = append(st.Instances, is)
		}
	}
	sort.Slice(st.Instances, func(i, j int) bool {
		a, b := st.Instances[i], st.Instances[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.ID < b.ID
	})
	st.Maintenance, _ = q.e.MaintenanceOf(ctx, app)
	if stopped, err := q.e.StoppedAccessories(ctx, app); err == nil {
		for n := range stopped {
			st.StoppedAccessories = append(st.StoppedAccessories, n)
		}
		sort.Strings(st.StoppedAccessories)
	}
	if l, err := q.st.GetLock(ctx, app); err == nil {
		st.Lock = lockOf(l)
	}
	events, _ := q.st.ListEvents(ctx, app, 10, store.EventCrash, store.EventError, store.EventBackup, store.EventRecover)
	st.Events = eventsOf(events)
	if bs, err := q.st.ListBackups(ctx, app); err == nil {
		seen := map[string]bool{}
		for _, b := range bs { // newest first
			k := b.Kind + "/" + b.Target
			if seen[k] || b.Status == store.BackupRunning {
				continue
			}
			seen[k] = true
			st.Backups = append(st.Backups, api.BackupStatus{Kind: b.Kind, Target: b.Target, ID: b.ID, Status: b.Status, Error: b.Error, Trigger: b.Trigger, Time: b.CreatedAt})
		}
	}
	return st, nil
}
