package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/moorage/moorage/internal/api"
)

// Plan is what a dry run answers: the plan that would run, exactly as the
// journal of the real operation records it, and changed nothing.
type Plan struct {
	// Text is the plan as `moorage deploys ID` shows it: a header line,
	// then one numbered step a line. Empty when nothing would run (a
	// config change that is only staged).
	Text  string
	Steps []api.PlanStep
	// Notes are the information and warnings the server gave.
	Notes []string
}

// PlanDeploy asks what a deploy of dir would do: the server plans it from
// what runs now and changes nothing (no lock, no release, no build).
func (c *Client) PlanDeploy(ctx context.Context, dir string, o DeployOptions, fn func(api.Event)) (*Plan, error) {
	o.DryRun = true
	return collectPlan(func(f func(api.Event)) (Result, error) { return c.Deploy(ctx, dir, o, f) }, fn)
}

// PlanRollback asks what a rollback would do.
func (c *Client) PlanRollback(ctx context.Context, app string, req api.RollbackRequest, fn func(api.Event)) (*Plan, error) {
	req.DryRun = true
	return collectPlan(func(f func(api.Event)) (Result, error) { return c.Rollback(ctx, app, req, f) }, fn)
}

// PlanScale asks what a scale would do.
func (c *Client) PlanScale(ctx context.Context, app string, req api.ScaleRequest, fn func(api.Event)) (*Plan, error) {
	req.DryRun = true
	return collectPlan(func(f func(api.Event)) (Result, error) { return c.Scale(ctx, app, req, f) }, fn)
}

// PlanConfig asks what a config change would do. Secret values travel to
// the server as in ChangeConfig (it checks them) but are stored nowhere.
func (c *Client) PlanConfig(ctx context.Context, app string, req api.ConfigRequest, fn func(api.Event)) (*Plan, error) {
	req.DryRun = true
	return collectPlan(func(f func(api.Event)) (Result, error) { return c.ChangeConfig(ctx, app, req, f) }, fn)
}

// collectPlan runs a dry run, passing its events on to fn, and gathers
// its plan.
func collectPlan(do func(func(api.Event)) (Result, error), fn func(api.Event)) (*Plan, error) {
	p := &Plan{}
	res, err := do(func(ev api.Event) {
		switch ev.Type {
		case api.EventPlan:
			p.Text, p.Steps = ev.Text, ev.Steps
		case api.EventInfo, api.EventWarn:
			p.Notes = append(p.Notes, ev.Text)
		}
		if fn != nil {
			fn(ev)
		}
	})
	if err != nil {
		return nil, err
	}
	if res.Status != api.StatusPlanned {
		if res.Text == "" {
			return nil, fmt.Errorf("dry run ended %s", res.Status)
		}
		return nil, errors.New(strings.TrimSpace(res.Text))
	}
	return p, nil
}

// canDryRun refuses a dry run the server cannot do: a server older than
// dry runs would ignore the flag and carry the operation out.
func (c *Client) canDryRun(ctx context.Context) error {
	v, err := c.Version(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(v.Features, api.FeatureDryRun) {
		return fmt.Errorf("the server runs moorage %s, which cannot plan an operation without carrying it out: nothing was sent; upgrade the server for --dry-run, or run without it", v.Version)
	}
	return nil
}

// dryRunQuery adds the dry-run parameter of POST /v1/deploys.
func dryRunQuery(q url.Values, dry bool) {
	if dry {
		q.Set(api.QueryDryRun, "1")
	}
}
