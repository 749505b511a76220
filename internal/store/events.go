package store

import (
	"context"
	"fmt"
	"time"

	"github.com/moorage/moorage/internal/api"
)

// Kinds of app event (the wire's, internal/api).
const (
	EventCrash    = api.AppEventCrash
	EventRestart  = api.AppEventRestart
	EventDeploy   = api.AppEventDeploy
	EventRollback = api.AppEventRollback
	EventRecover  = api.AppEventRecover
	EventScale    = api.AppEventScale
	EventBackup   = api.AppEventBackup
	EventError    = api.AppEventError
)

// AppEvent is something that happened to an app, kept for `moorage ps` and
// history (api.AppEvent on the wire).
type AppEvent struct {
	ID       int64
	App      string
	Time     time.Time
	Kind     string
	Instance string
	Message  string
}

// AddEvent records an event.
func (s *Store) AddEvent(ctx context.Context, e AppEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO events (app, time, kind, instance, message) VALUES (?, ?, ?, ?, ?)`, e.App, e.Time.UnixNano(), e.Kind, e.Instance, e.Message)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// ListEvents returns app's most recent events of the given kinds (all when
// none), newest first.
func (s *Store) ListEvents(ctx context.Context, app string, limit int, kinds ...string) ([]AppEvent, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT id, app, time, kind, instance, message FROM events WHERE app = ?`
	args := []any{app}
	if len(kinds) > 0 {
		q += ` AND kind IN (?` + repeat(",?", len(kinds)-1) + `)`
		for _, k := range kinds {
			args = append(args, k)
		}
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []AppEvent
	for rows.Next() {
		var e AppEvent
		var t int64
		if err := rows.Scan(&e.ID, &e.App, &t, &e.Kind, &e.Instance, &e.Message); err != nil {
			return nil, err
		}
		e.Time = toTime(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}
