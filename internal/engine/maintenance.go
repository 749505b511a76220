package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/moorage/moorage/internal/api"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/store"
)

// Maintenance is an app's maintenance mode (internal/api).
type Maintenance = api.Maintenance

// SetMaintenance turns app's maintenance mode on (m non-nil) or off. While
// on, the proxy answers the app's requests with a 503 maintenance page;
// health checks still reach the instances. It is kept across restarts.
func (e *Engine) SetMaintenance(ctx context.Context, app string, m *Maintenance) error {
	return e.setMaintenance(ctx, app, m, e.st.SetMaintenance)
}

// SetUserMaintenance is SetMaintenance for `moorage maintenance on|off`:
// it takes no lock (the page may go up while a deploy runs: it changes
// nothing that runs), and it is refused, with store.ErrStopped, while the
// app is stopped or being destroyed, by the statement that records it.
func (e *Engine) SetUserMaintenance(ctx context.Context, app string, m *Maintenance) error {
	if m != nil {
		c := *m
		c.Stopped, c.Destroying = false, false // only stop and destroy set them
		m = &c
	}
	return e.setMaintenance(ctx, app, m, e.st.SetUserMaintenance)
}

func (e *Engine) setMaintenance(ctx context.Context, app string, m *Maintenance, record func(ctx context.Context, app, m string) error) error {
	val := ""
	if m != nil {
		b, _ := json.Marshal(m)
		val = string(b)
	}
	if err := record(ctx, app, val); err != nil {
		return err
	}
	e.applyMaintenance(app, m)
	msg := "maintenance off"
	if m != nil {
		msg = "maintenance on"
	}
	e.st.AddEvent(ctx, store.AppEvent{App: app, Kind: "maintenance", Message: msg})
	return nil
}

// MaintenanceOf returns app's maintenance mode (nil = off).
func (e *Engine) MaintenanceOf(ctx context.Context, app string) (*Maintenance, error) {
	val, err := e.st.Maintenance(ctx, app)
	if err != nil || val == "" {
		return nil, err
	}
	var m Maintenance
	if err := json.Unmarshal([]byte(val), &m); err != nil {
		return nil, fmt.Errorf("maintenance of %s: %w", app, err)
	}
	return &m, nil
}

func (e *Engine) applyMaintenance(app string, m *Maintenance) {
	if m == nil {
		e.proxy.SetMaintenance(app, nil)
		return
	}
	e.proxy.SetMaintenance(app, &proxy.Maintenance{Message: m.Message, HTML: m.HTML})
}

// restoreMaintenance applies the stored maintenance modes (at start).
func (e *Engine) restoreMaintenance(ctx context.Context) {
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		return
	}
	for _, a := range apps {
		if m, err := e.MaintenanceOf(ctx, a.Name); err == nil && m != nil {
			e.applyMaintenance(a.Name, m)
		}
	}
}
