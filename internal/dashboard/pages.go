package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

// AppRow is one app of the overview.
type AppRow struct {
	Name        string
	Runtime     string
	Active      string
	State       string // "running", "degraded", "stopped", "not deployed", "maintenance"
	Maintenance bool
	LastDeploy  *api.Deploy
	Instances   []api.InstanceStatus
	Restarts    int
	ReqRate     float64 // requests per second since the previous sample
	ErrRate     float64 // 5xx per second
	Requests    uint64
	Errors      uint64
	Err         string
}

// Overview is the overview page's data.
type Overview struct {
	Apps []AppRow
	At   time.Time
}

// overviewData asks the API about every app (a few at a time).
func (d *Dashboard) overviewData(ctx context.Context, c *client.Client) (*Overview, error) {
	apps, err := c.Apps(ctx)
	if err != nil {
		return nil, err
	}
	traffic, _ := c.Traffic(ctx)
	rates := d.rates(traffic)
	rows := make([]AppRow, len(apps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			row := AppRow{Name: a.Name, Runtime: a.Runtime, Active: a.Active}
			st, err := c.Status(ctx, a.Name)
			if err != nil {
				row.Err = err.Error()
			} else {
				fillRow(&row, st)
			}
			if ds, err := c.Deploys(ctx, a.Name, 1); err == nil && len(ds) > 0 {
				row.LastDeploy = &ds[0]
			}
			t := traffic[a.Name]
			row.Requests, row.Errors = t.Requests, t.Errors
			r := rates[a.Name]
			row.ReqRate, row.ErrRate = r[0], r[1]
			rows[i] = row
		}()
	}
	wg.Wait()
	return &Overview{Apps: rows, At: time.Now()}, nil
}

func fillRow(row *AppRow, st *api.AppStatus) {
	row.Runtime = st.Runtime
	row.Active = st.Active
	row.Maintenance = st.Maintenance != nil
	running, bad := 0, 0
	for _, in := range st.Instances {
		if in.Kind == api.InstanceTask {
			continue
		}
		row.Instances = append(row.Instances, in)
		row.Restarts += in.Restarts
		if in.State == api.InstanceRunning && in.Health != "unhealthy" {
			running++
		} else {
			bad++
		}
	}
	switch {
	case st.Active == "":
		row.State = "not deployed"
	case row.Maintenance:
		row.State = "maintenance"
	case running == 0:
		row.State = "stopped"
	case bad > 0:
		row.State = "degraded"
	default:
		row.State = "running"
	}
}

// rates turns cumulative counts into per-second rates against the sample
// taken at least 5 s earlier.
func (d *Dashboard) rates(now map[string]proxyCount) map[string][2]float64 {
	d.trafficMu.Lock()
	defer d.trafficMu.Unlock()
	t := time.Now()
	if d.traffic.at.IsZero() || t.Sub(d.traffic.at) >= 5*time.Second {
		d.prevTraf, d.traffic = d.traffic, trafficSample{at: t, counts: now}
	}
	out := map[string][2]float64{}
	prev := d.prevTraf
	if prev.at.IsZero() {
		return out
	}
	secs := t.Sub(prev.at).Seconds()
	for app, c := range now {
		p := prev.counts[app]
		if c.Requests < p.Requests {
			continue
		}
		out[app] = [2]float64{float64(c.Requests-p.Requests) / secs, float64(c.Errors-p.Errors) / secs}
	}
	return out
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ov, err := d.overviewData(r.Context(), d.as(r, s))
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	p := d.newPage(s, "Apps", "apps", ov)
	p.Live = true
	d.render(w, http.StatusOK, "overview", p)
}

// sse starts a server-sent event stream.
func sse(w http.ResponseWriter) (send func(event, data string) error, ok bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return nil, false
	}
	return func(event, data string) error {
		var b strings.Builder
		b.WriteString("event: " + event + "\n")
		for _, line := range strings.Split(data, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
		if _, err := w.Write([]byte(b.String())); err != nil {
			return err
		}
		return rc.Flush()
	}, true
}

// fragment renders one named template of a page.
func (d *Dashboard) fragment(pageName, name string, p *page) (string, error) {
	var b strings.Builder
	err := d.pages[pageName].ExecuteTemplate(&b, name, p)
	return b.String(), err
}

func (d *Dashboard) overviewEvents(w http.ResponseWriter, r *http.Request, s *session) {
	send, ok := sse(w)
	if !ok {
		return
	}
	c := d.as(r, s)
	last := ""
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		ov, err := d.overviewData(r.Context(), c)
		if err == nil {
			p := d.newPage(s, "", "", ov)
			html, err := d.fragment("overview", "apps", p)
			if err == nil && html != last {
				if send("apps", html) != nil {
					return
				}
				last = html
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// AppPage is one app's page.
type AppPage struct {
	Row         AppRow
	Status      *api.AppStatus
	Releases    []api.Release
	Deploys     []api.Deploy
	ConfigKeys  []ConfigKey
	Certs       []api.CertInfo
	Backups     []api.Backup
	Volumes     []VolumeRow
	Accessories []string
	Services    []ServiceRow
}

// ConfigKey is a config value's name: the dashboard never shows values.
type ConfigKey struct {
	Key    string
	Secret bool
}

// VolumeRow is a backup target (volume or accessory) with its latest
// backup and verification.
type VolumeRow struct {
	Kind, Target string
	Last         *api.Backup
	Verified     *api.Backup
}

// ServiceRow is a service and its replicas in the active release.
type ServiceRow struct {
	Name     string
	Replicas int
}

func (d *Dashboard) appData(ctx context.Context, c *client.Client, app string) (*AppPage, error) {
	st, err := c.Status(ctx, app)
	if err != nil {
		return nil, err
	}
	ap := &AppPage{Status: st, Row: AppRow{Name: app}}
	fillRow(&ap.Row, st)
	if ap.Releases, err = c.Releases(ctx, app); err != nil {
		return nil, err
	}
	// newest first
	for i, j := 0, len(ap.Releases)-1; i < j; i, j = i+1, j-1 {
		ap.Releases[i], ap.Releases[j] = ap.Releases[j], ap.Releases[i]
	}
	if ap.Deploys, err = c.Deploys(ctx, app, 10); err != nil {
		return nil, err
	}
	if len(ap.Deploys) > 0 {
		ap.Row.LastDeploy = &ap.Deploys[0]
	}
	vars, err := c.Config(ctx, app)
	if err != nil {
		return nil, err
	}
	for _, v := range vars {
		ap.ConfigKeys = append(ap.ConfigKeys, ConfigKey{Key: v.Key, Secret: v.Secret}) // never v.Value
	}
	ap.Certs, _ = c.Certs(ctx, app)
	if ap.Backups, err = c.Backups(ctx, app); err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i := range ap.Backups {
		b := &ap.Backups[i]
		k := b.Kind + "\x00" + b.Target
		j, ok := idx[k]
		if !ok {
			j = len(ap.Volumes)
			idx[k] = j
			ap.Volumes = append(ap.Volumes, VolumeRow{Kind: b.Kind, Target: b.Target})
		}
		v := &ap.Volumes[j]
		if v.Last == nil || b.CreatedAt.After(v.Last.CreatedAt) {
			v.Last = b
		}
		if !b.VerifiedAt.IsZero() && (v.Verified == nil || b.VerifiedAt.After(v.Verified.VerifiedAt)) {
			v.Verified = b
		}
	}
	seen := map[string]bool{}
	for _, in := range st.Instances {
		if in.Kind == api.InstanceAccessory && !seen[in.Service] {
			seen[in.Service] = true
			ap.Accessories = append(ap.Accessories, in.Service)
		}
	}
	for _, name := range sortedKeys(st.Formation) {
		ap.Services = append(ap.Services, ServiceRow{Name: name, Replicas: st.Formation[name]})
	}
	return ap, nil
}

var doneNotes = map[string]string{
	"maintenance-on":  "Maintenance mode is on: visitors get the 503 maintenance page.",
	"maintenance-off": "Maintenance mode is off: the app serves again.",
	"restart":         "The accessory was restarted.",
	"backup":          "The backup finished.",
	"prune":           "Pruned what the app no longer needs.",
}

func (d *Dashboard) app(w http.ResponseWriter, r *http.Request, s *session) {
	app := r.PathValue("app")
	ap, err := d.appData(r.Context(), d.as(r, s), app)
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	p := d.newPage(s, app, "apps", ap)
	p.Done = doneNotes[r.URL.Query().Get("done")]
	d.render(w, http.StatusOK, "app", p)
}

// DeployPage is one deploy's page.
type DeployPage struct {
	App    string
	Deploy *api.Deploy
	Live   bool
}

func (dp *DeployPage) running() bool { return dp.Deploy.Status == "running" }

func (d *Dashboard) deployOf(r *http.Request, s *session) (*DeployPage, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, &client.Error{Status: http.StatusNotFound, Msg: "a deploy number is a whole number"}
	}
	app := r.PathValue("app")
	dep, err := d.as(r, s).GetDeploy(r.Context(), app, id)
	if err != nil {
		return nil, err
	}
	dp := &DeployPage{App: app, Deploy: dep}
	dp.Live = dp.running()
	return dp, nil
}

func (d *Dashboard) deploy(w http.ResponseWriter, r *http.Request, s *session) {
	dp, err := d.deployOf(r, s)
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	p := d.newPage(s, fmt.Sprintf("Deploy #%d of %s", dp.Deploy.ID, dp.App), "apps", dp)
	p.Live = dp.Live
	d.render(w, http.StatusOK, "deploy", p)
}

// deployEvents streams the deploy's steps as they are journaled, until it
// ends.
func (d *Dashboard) deployEvents(w http.ResponseWriter, r *http.Request, s *session) {
	send, ok := sse(w)
	if !ok {
		return
	}
	last := ""
	for {
		dp, err := d.deployOf(r, s)
		if err != nil {
			send("failed", err.Error())
			return
		}
		html, err := d.fragment("deploy", "steps", d.newPage(s, "", "", dp))
		if err != nil {
			return
		}
		if html != last {
			if send("steps", html) != nil {
				return
			}
			last = html
		}
		if !dp.running() {
			send("end", dp.Deploy.Status)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// LogsPage is the logs page.
type LogsPage struct {
	App      string
	Service  string
	Filter   string
	Services []string
	Lines    []api.LogLine
	Query    string // the filter as a query string, for the event stream
}

const logTail = 300

func logFilter(r *http.Request) (service, filter string) {
	q := r.URL.Query()
	return strings.TrimSpace(q.Get("service")), q.Get("q")
}

func (d *Dashboard) logs(w http.ResponseWriter, r *http.Request, s *session) {
	app := r.PathValue("app")
	c := d.as(r, s)
	st, err := c.Status(r.Context(), app)
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	lp := &LogsPage{App: app}
	lp.Service, lp.Filter = logFilter(r)
	seen := map[string]bool{}
	for _, name := range sortedKeys(st.Formation) {
		seen[name] = true
		lp.Services = append(lp.Services, name)
	}
	for _, in := range st.Instances {
		if !seen[in.Service] && in.Kind != api.InstanceTask {
			seen[in.Service] = true
			lp.Services = append(lp.Services, in.Service)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	err = c.Logs(ctx, app, client.LogsOptions{Service: lp.Service, Tail: logTail}, func(l api.LogLine) {
		if lp.Filter == "" || strings.Contains(l.Text, lp.Filter) {
			lp.Lines = append(lp.Lines, l)
		}
	})
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	lp.Query = "service=" + urlEscape(lp.Service) + "&q=" + urlEscape(lp.Filter)
	p := d.newPage(s, "Logs of "+app, "apps", lp)
	p.Live = true
	d.render(w, http.StatusOK, "logs", p)
}

// logEvents follows the app's logs: new lines only (the page shows the
// tail), filtered as the page is.
func (d *Dashboard) logEvents(w http.ResponseWriter, r *http.Request, s *session) {
	send, ok := sse(w)
	if !ok {
		return
	}
	service, filter := logFilter(r)
	start := time.Now()
	err := d.as(r, s).Logs(r.Context(), r.PathValue("app"), client.LogsOptions{Service: service, Follow: true, Since: start.UTC().Format(time.RFC3339)}, func(l api.LogLine) {
		if filter != "" && !strings.Contains(l.Text, filter) {
			return
		}
		b, _ := json.Marshal(struct {
			Time     string `json:"time"`
			Instance string `json:"instance"`
			Stream   string `json:"stream"`
			Text     string `json:"text"`
		}{l.Time.Format("15:04:05"), l.Instance, l.Stream, l.Text})
		send("line", string(b))
	})
	if err != nil && r.Context().Err() == nil {
		send("failed", err.Error())
	}
}

// ServerPage is the server's page.
type ServerPage struct {
	Version  api.Version
	Disk     *api.DiskUsage
	Audit    []api.AuditEntry
	Users    []api.DashboardUser
	Runtimes []api.RuntimeHealth
}

func (d *Dashboard) server(w http.ResponseWriter, r *http.Request, s *session) {
	c := d.as(r, s)
	v, err := c.Version(r.Context())
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	sp := &ServerPage{Version: v}
	if sp.Disk, err = c.Disk(r.Context()); err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	sp.Audit, _ = c.Audit(r.Context(), 30)
	sp.Users, _ = c.DashboardUsers(r.Context())
	sp.Runtimes, _ = c.RuntimesHealth(r.Context())
	d.render(w, http.StatusOK, "server", d.newPage(s, "Server", "server", sp))
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t).Round(time.Second)
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%ds ago", int(d.Seconds()))
		case d < time.Hour:
			return fmt.Sprintf("%dm ago", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh ago", int(d.Hours()))
		}
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	},
	"until": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		d := time.Until(t)
		if d < 0 {
			return "expired"
		}
		return fmt.Sprintf("in %d days", int(d.Hours()/24))
	},
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05Z") },
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dur": func(d time.Duration) string {
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(100 * time.Millisecond).String()
	},
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return fmt.Sprintf("%d B", n)
		}
		div, exp := int64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	},
	"rate": func(f float64) string {
		if f == 0 {
			return "0/s"
		}
		return fmt.Sprintf("%.2f/s", f)
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"join": strings.Join,
	// artifact shortens an artifact reference: a release directory's last
	// element, an image's name and tag or a short digest.
	"artifact": func(s string) string {
		if i := strings.LastIndexByte(s, '/'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
		if len(s) > 24 {
			s = s[:24] + "…"
		}
		return s
	},
}
