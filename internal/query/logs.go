package query

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// LogsRequest selects an app's log lines.
type LogsRequest struct {
	App     string
	Service string // "" = every service (accessories and tasks included)
	Release string // "" = every release
	Tail    int    // last N lines overall; 0 = all
	Since   time.Time
	Follow  bool
}

// Logs calls fn with the matching lines of every instance the app ever
// ran, merged by time. With Follow it goes on with new lines, including
// those of instances that start later (a deploy while following), until ctx
// is done.
func (q *Reader) Logs(ctx context.Context, req LogsRequest, fn func(runtime.LogLine) error) error {
	a, err := q.st.GetApp(ctx, req.App)
	if err != nil {
		return err
	}
	recs, err := q.st.ListInstances(ctx, req.App)
	if err != nil {
		return err
	}
	if req.Service != "" {
		if err := q.checkLogService(ctx, a, recs, req.Service); err != nil {
			return err
		}
	}
	match := func(r store.InstanceRecord) bool {
		return (req.Service == "" || r.Service == req.Service) && (req.Release == "" || r.Release == req.Release)
	}
	var lines []runtime.LogLine
	seen := map[string]bool{}
	for _, rec := range recs {
		if !match(rec) {
			continue
		}
		seen[rec.ID] = true
		for _, rt := range q.e.Runtimes() {
			var got []runtime.LogLine
			err := rt.Logs(ctx, rec.ID, runtime.LogOptions{Tail: req.Tail, Since: req.Since}, func(l runtime.LogLine) error {
				got = append(got, l)
				return nil
			})
			if err == nil {
				lines = append(lines, got...)
				if len(got) > 0 {
					break
				}
			} else if !errors.Is(err, runtime.ErrNotFound) {
				return err
			}
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	if req.Tail > 0 && len(lines) > req.Tail {
		lines = lines[len(lines)-req.Tail:]
	}
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	if !req.Follow {
		return nil
	}
	return q.followLogs(ctx, req, seen, lines, fn)
}

// ErrNoService is returned for the logs of a service an app never had.
var ErrNoService = errors.New("no such service")

// checkLogService checks that app has (or had) something named service
// that logs: a service or accessory of its active spec, or the service of
// an instance it ran (release tasks are "release-1", ...).
func (q *Reader) checkLogService(ctx context.Context, a *store.App, recs []store.InstanceRecord, service string) error {
	names := map[string]bool{}
	for _, r := range recs {
		names[r.Service] = true
	}
	if a.Current != 0 {
		if rel, err := q.st.GetRelease(ctx, a.Name, a.Current); err == nil {
			for n := range rel.Spec.Services {
				names[n] = true
			}
			for n := range rel.Spec.Accessories {
				names[n] = true
			}
		}
	}
	if names[service] {
		return nil
	}
	if len(names) == 0 {
		return fmt.Errorf("%s has %w %q: it has run nothing yet", a.Name, ErrNoService, service)
	}
	valid := make([]string, 0, len(names))
	for n := range names {
		valid = append(valid, n)
	}
	sort.Strings(valid)
	return fmt.Errorf("%s has %w %q; give one of: %s", a.Name, ErrNoService, service, strings.Join(valid, ", "))
}

// followLogs streams new lines of running instances, picking up instances
// that start while it runs.
func (q *Reader) followLogs(ctx context.Context, req LogsRequest, _ map[string]bool, printed []runtime.LogLine, fn func(runtime.LogLine) error) error {
	var mu sync.Mutex
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	since := time.Now()
	if n := len(printed); n > 0 {
		since = printed[n-1].Time.Add(time.Nanosecond)
	}
	following := map[string]bool{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for name, rt := range q.e.Runtimes() {
			ins, err := rt.List(ctx, runtime.Filter{App: req.App, Service: req.Service, Release: req.Release})
			if err != nil {
				continue
			}
			for _, in := range ins {
				mu.Lock()
				skip := following[in.ID] || in.State == runtime.StateExited
				following[in.ID] = true
				mu.Unlock()
				if skip {
					continue
				}
				from := since
				if in.StartedAt.After(since) {
					from = time.Time{} // started while we follow: all of it
				}
				wg.Add(1)
				go func(rt runtime.Runtime, id string) {
					defer wg.Done()
					err := rt.Logs(ctx, id, runtime.LogOptions{Since: from, Follow: true}, func(l runtime.LogLine) error {
						mu.Lock()
						defer mu.Unlock()
						if err := fn(l); err != nil {
							cancel(err)
							return err
						}
						return nil
					})
					if err != nil && ctx.Err() == nil && !errors.Is(err, runtime.ErrNotFound) {
						q.log.Debug("follow logs", "instance", id, "runtime", name, "err", err)
						mu.Lock()
						following[id] = false
						mu.Unlock()
					}
				}(rt, in.ID)
			}
		}
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-tick.C:
		}
	}
}
