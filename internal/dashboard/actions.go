package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

// Confirm is a confirmation page's data: what will happen, and the form
// that makes it happen.
type Confirm struct {
	App     string
	Action  string
	Title   string
	What    []string // what will happen, one sentence each
	Fields  map[string]string
	Button  string
	Danger  bool
	Release string
}

// plan checks an action's parameters and says what it will do.
func (d *Dashboard) plan(ctx context.Context, c *client.Client, app, action string, form func(string) string) (*Confirm, error) {
	cf := &Confirm{App: app, Action: action, Fields: map[string]string{}}
	bad := func(f string, a ...any) error {
		return &client.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(f, a...)}
	}
	switch action {
	case "rollback":
		to, err := strconv.Atoi(strings.TrimPrefix(form("to"), "v"))
		if err != nil || to <= 0 {
			return nil, bad("choose the release to roll back to (a version number like 3)")
		}
		st, err := c.Status(ctx, app)
		if err != nil {
			return nil, err
		}
		cf.Fields["to"] = strconv.Itoa(to)
		cf.Title = fmt.Sprintf("Roll %s back to v%d", app, to)
		cf.Release = fmt.Sprintf("v%d", to)
		cf.What = []string{
			fmt.Sprintf("Instances of release v%d of %s start with v%d's code and config; the proxy moves traffic to them once they are healthy.", to, app, to),
			fmt.Sprintf("The instances of the active release %s stop after draining.", orNone(st.Active)),
			"Release tasks do not run again. If v" + strconv.Itoa(to) + "'s instances fail their health checks, " + orNone(st.Active) + " keeps serving.",
		}
		cf.Button, cf.Danger = fmt.Sprintf("Roll back to v%d", to), true
	case "maintenance-on":
		cf.Title = "Turn maintenance mode on for " + app
		cf.What = []string{"Every visitor of " + app + " gets a 503 maintenance page until it is turned off; health checks still reach the instances."}
		msg := form("message")
		if len(msg) > 500 {
			return nil, bad("the maintenance message may be at most 500 characters")
		}
		cf.Fields["message"] = msg
		cf.Button, cf.Danger = "Turn maintenance on", true
	case "maintenance-off":
		cf.Title = "Turn maintenance mode off for " + app
		cf.What = []string{app + " serves its visitors again."}
		cf.Button = "Turn maintenance off"
	case "scale":
		svc := form("service")
		n, err := strconv.Atoi(form("replicas"))
		if svc == "" || err != nil || n < 0 || n > 100 {
			return nil, bad("scale needs a service and a number of replicas from 0 to 100")
		}
		st, err := c.Status(ctx, app)
		if err != nil {
			return nil, err
		}
		cur, ok := st.Formation[svc]
		if !ok {
			return nil, bad("%s has no service %q", app, svc)
		}
		cf.Fields["service"], cf.Fields["replicas"] = svc, strconv.Itoa(n)
		cf.Title = fmt.Sprintf("Scale %s of %s to %d", svc, app, n)
		cf.What = []string{fmt.Sprintf("%s of %s goes from %d to %d replicas (a new release with the same code and config).", svc, app, cur, n)}
		if n == 0 {
			cf.What = append(cf.What, "With 0 replicas the service stops: nothing answers its requests.")
			cf.Danger = true
		}
		cf.Button = fmt.Sprintf("Scale to %d", n)
	case "restart":
		name := form("accessory")
		if name == "" {
			return nil, bad("choose the accessory to restart")
		}
		cf.Fields["accessory"] = name
		cf.Title = fmt.Sprintf("Restart accessory %s of %s", name, app)
		cf.What = []string{fmt.Sprintf("%s stops and starts again; what uses it sees errors while it is down. Its data stays.", name)}
		cf.Button, cf.Danger = "Restart "+name, true
	case "backup":
		cf.Title = "Back up " + app
		cf.What = []string{"Every volume and accessory of " + app + " is backed up now (instances may pause for a consistent copy); the backup keeps the usual retention."}
		cf.Button = "Back up now"
	case "prune":
		rep, err := c.Prune(ctx, app, true)
		if err != nil {
			return nil, err
		}
		cf.Title = "Prune " + app
		cf.What = []string{fmt.Sprintf("%d artifacts of old releases beyond the retention window and %s of old logs are deleted. The active release and those a rollback may need stay.", len(rep.Artifacts), funcs["bytes"].(func(int64) string)(rep.LogBytes))}
		cf.Button, cf.Danger = "Prune", true
	default:
		return nil, &client.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("no action %q", action)}
	}
	return cf, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (d *Dashboard) confirm(w http.ResponseWriter, r *http.Request, s *session) {
	app, action := r.PathValue("app"), r.PathValue("action")
	if s.role != api.RoleOperator {
		d.fail(w, r, s, http.StatusForbidden, "Your role is read-only: you may look, not act. Ask an operator.")
		return
	}
	cf, err := d.plan(r.Context(), d.as(r, s), app, action, r.URL.Query().Get)
	if err != nil {
		d.apiFail(w, r, s, err)
		return
	}
	d.render(w, http.StatusOK, "confirm", d.newPage(s, cf.Title, "apps", cf))
}

// action carries out a confirmed action: CSRF token, operator role, then
// the API call; every attempt is audited with its outcome.
func (d *Dashboard) action(w http.ResponseWriter, r *http.Request, s *session) {
	app, action := r.PathValue("app"), r.PathValue("action")
	if !d.checkCSRF(w, r, s, action, app) {
		return
	}
	if s.role != api.RoleOperator {
		d.audit(r, s.user, action, app, "refused: read-only role")
		d.fail(w, r, s, http.StatusForbidden, "Your role is read-only: you may look, not act. Ask an operator.")
		return
	}
	c := d.as(r, s)
	cf, err := d.plan(r.Context(), c, app, action, r.PostFormValue)
	if err != nil {
		d.audit(r, s.user, action, app, "refused: "+err.Error())
		d.apiFail(w, r, s, err)
		return
	}
	target := cf.Title
	appURL := d.prefix + "/apps/" + urlPath(app)
	ctx := r.Context()
	switch action {
	case "rollback":
		to, _ := strconv.Atoi(cf.Fields["to"])
		d.streamed(w, r, s, action, target, func(ctx context.Context, fn func(api.Event)) (client.Result, error) {
			return c.Rollback(ctx, app, api.RollbackRequest{To: to, Wait: true}, fn)
		})
	case "scale":
		n, _ := strconv.Atoi(cf.Fields["replicas"])
		d.streamed(w, r, s, action, target, func(ctx context.Context, fn func(api.Event)) (client.Result, error) {
			return c.Scale(ctx, app, api.ScaleRequest{Replicas: map[string]int{cf.Fields["service"]: n}, Wait: true}, fn)
		})
	case "maintenance-on", "maintenance-off":
		var m *api.Maintenance
		if action == "maintenance-on" {
			m = &api.Maintenance{Message: cf.Fields["message"]}
		}
		if err := c.SetMaintenance(ctx, app, m); err != nil {
			d.audit(r, s.user, action, target, "failed: "+err.Error())
			d.apiFail(w, r, s, err)
			return
		}
		d.audit(r, s.user, action, target, "ok")
		http.Redirect(w, r, appURL+"?done="+action, http.StatusSeeOther)
	case "restart", "backup":
		var res client.Result
		if action == "restart" {
			res, err = c.RestartAccessory(ctx, app, cf.Fields["accessory"], true, nil)
		} else {
			res, err = c.CreateBackup(ctx, app, api.BackupRequest{}, nil)
		}
		if err == nil && !res.OK() {
			err = fmt.Errorf("%s: %s", res.Status, res.Text)
		}
		if err != nil {
			d.audit(r, s.user, action, target, "failed: "+err.Error())
			d.apiFail(w, r, s, err)
			return
		}
		d.audit(r, s.user, action, target, "ok")
		http.Redirect(w, r, appURL+"?done="+action, http.StatusSeeOther)
	case "prune":
		if _, err := c.Prune(ctx, app, false); err != nil {
			d.audit(r, s.user, action, target, "failed: "+err.Error())
			d.apiFail(w, r, s, err)
			return
		}
		d.audit(r, s.user, action, target, "ok")
		http.Redirect(w, r, appURL+"?done=prune", http.StatusSeeOther)
	}
}

// streamed starts an operation that journals a deploy (rollback, scale)
// and sends the browser to that deploy's live page as soon as it has a
// number; the operation goes on without the browser, and its outcome is
// audited when it ends.
func (d *Dashboard) streamed(w http.ResponseWriter, r *http.Request, s *session, action, target string, run func(context.Context, func(api.Event)) (client.Result, error)) {
	started := make(chan int64, 1)
	ended := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Hour)
		defer cancel()
		once := false
		res, err := run(ctx, func(ev api.Event) {
			if ev.Deploy != 0 && !once {
				once = true
				started <- ev.Deploy
			}
		})
		outcome := res.Status
		if err != nil {
			outcome = "failed: " + err.Error()
		} else if !res.OK() {
			outcome = res.Status + ": " + res.Text
		} else {
			outcome = "ok"
		}
		d.audit(r, s.user, action, target, outcome)
		if err == nil && !res.OK() {
			err = fmt.Errorf("%s: %s", res.Status, res.Text)
		}
		ended <- err
	}()
	select {
	case id := <-started:
		http.Redirect(w, r, fmt.Sprintf("%s/apps/%s/deploys/%d", d.prefix, urlPath(r.PathValue("app")), id), http.StatusSeeOther)
	case err := <-ended:
		if err != nil {
			d.apiFail(w, r, s, err)
			return
		}
		http.Redirect(w, r, d.prefix+"/apps/"+urlPath(r.PathValue("app")), http.StatusSeeOther)
	case <-r.Context().Done():
	}
}
