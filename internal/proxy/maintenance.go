package proxy

import (
	"net/http"
	"sync/atomic"
)

// Maintenance puts an app in maintenance mode: the proxy answers its
// requests with a 503 page instead of forwarding them, except its health
// check path, which still reaches the instances.
type Maintenance struct {
	// Message is shown on the default maintenance page ("" = a generic
	// message naming the app).
	Message string
	// HTML, when set, is the whole page served instead of the default one.
	HTML string
}

// maintenancePage is a Maintenance rendered once.
type maintenancePage struct {
	cfg  Maintenance
	page []byte
}

// appState is what the routes of one app share across SetApp calls:
// maintenance mode and request metrics.
type appState struct {
	name        string
	maintenance atomic.Pointer[maintenancePage]
	metrics     appMetrics
}

// SetMaintenance turns maintenance mode on for app (m != nil) or off (m ==
// nil). It takes effect for the next request and holds across SetApp calls;
// it may be set before the app has routes (at server start).
func (p *Proxy) SetMaintenance(app string, m *Maintenance) {
	if app == "" {
		return
	}
	p.mu.Lock()
	st := p.appStateLocked(app)
	p.mu.Unlock()
	if m == nil {
		if st.maintenance.Swap(nil) != nil {
			p.logger.Info("maintenance off", "app", app)
		}
		return
	}
	page := []byte(m.HTML)
	if m.HTML == "" {
		msg := m.Message
		if msg == "" {
			msg = app + " is down for maintenance. Please try again shortly."
		}
		page = renderPage(http.StatusServiceUnavailable, msg)
	}
	st.maintenance.Store(&maintenancePage{cfg: *m, page: page})
	p.logger.Info("maintenance on", "app", app, "message", m.Message, "custom_html", m.HTML != "")
}

// Maintenance reports app's maintenance mode: nil when off.
func (p *Proxy) Maintenance(app string) *Maintenance {
	p.mu.Lock()
	st := p.appStates[app]
	p.mu.Unlock()
	if st == nil {
		return nil
	}
	if mp := st.maintenance.Load(); mp != nil {
		m := mp.cfg
		return &m
	}
	return nil
}

// appStateLocked returns app's state, creating it. Called with p.mu held.
func (p *Proxy) appStateLocked(app string) *appState {
	st := p.appStates[app]
	if st == nil {
		st = &appState{name: app}
		p.appStates[app] = st
	}
	return st
}
