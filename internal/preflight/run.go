package preflight

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/spec"
)

// PlanFunc returns the plan a deploy of sp would run, or why there is none.
type PlanFunc func(ctx context.Context, e *engine.Engine, sp *spec.Spec, data []byte) (plan, note string)

// Run runs `moorage check` on an app directory: the spec, the plan,
// the security findings and the spec's checks in a throwaway build. The
// engine owns dir from now on. The pipeline's check stage runs it too.
func Run(ctx context.Context, e *engine.Engine, specName string, data []byte, dir, rt string, plan PlanFunc) (*Report, error) {
	rep := &Report{}
	sp, err := spec.ParseFor(specName, data, rt)
	rep.Results = append(rep.Results, SpecResult(specName, err))
	if err != nil {
		rep.App = appOfYAML(data)
		return rep, nil
	}
	rep.App, rep.Runtime = sp.App, sp.Runtime
	for _, w := range sp.Warnings() {
		rep.Results = append(rep.Results, Result{Name: "spec.warning", Status: Warn, Message: w, Fix: "remove the setting, or deploy on the runtime it is for"})
	}
	if plan != nil {
		rep.Plan, rep.PlanNote = plan(ctx, e, sp, data)
	}

	vars, err := e.Store().GetConfig(ctx, sp.App)
	if err != nil {
		return nil, err
	}
	cfg := Config{}
	for _, v := range vars {
		cfg[v.Key] = v.Secret
	}
	rep.Results = append(rep.Results, Security(sp, cfg, os.Geteuid() == 0)...)

	if len(sp.Checks) == 0 {
		rep.Results = append(rep.Results, Result{Name: "checks", Status: Warn,
			Message: "the spec has no checks: nothing is tried in the build before it serves",
			Fix:     "add checks: to moorage.yaml, e.g. checks: [python3 manage.py check --deploy]"})
		return rep, nil
	}
	res, err := e.RunInBuild(ctx, engine.InBuildRequest{Spec: sp, ContextDir: dir, Tasks: sp.Checks})
	if err != nil {
		return nil, err
	}
	if res.BuildErr != nil {
		rep.Results = append(rep.Results, Result{Name: "build", Status: Fail,
			Message: res.BuildErr.Error(), Output: res.BuildOutput, Seconds: res.BuildTime.Seconds(),
			Fix: "fix the build (see its output), then run moorage check again"})
		return rep, nil
	}
	rep.Results = append(rep.Results, Result{Name: "build", Status: Pass, Message: "built", Seconds: res.BuildTime.Seconds()})
	for _, run := range res.Runs {
		rep.Results = append(rep.Results, checkResult(specName, run))
	}
	return rep, nil
}

// checkResult turns a check's run into a finding; the fix names the
// check's last line of output, where tools say what to do.
func checkResult(specName string, run engine.CommandRun) Result {
	cmd := strings.Join(run.Command, " ")
	x := Result{Name: fmt.Sprintf("checks[%d]", run.Index), Output: run.Output, Seconds: run.Duration.Seconds()}
	if run.OK() {
		x.Status, x.Message = Pass, "`"+cmd+"` passed"
		return x
	}
	x.Status = Fail
	if run.Err != nil {
		x.Message = fmt.Sprintf("`%s`: %v", cmd, run.Err)
	} else {
		x.Message = fmt.Sprintf("`%s` exited with status %d", cmd, run.Code)
	}
	where := specName
	if run.Line > 0 {
		where = fmt.Sprintf("%s:%d", specName, run.Line)
	}
	x.Fix = fixOf(run.Command, run.Output)
	if x.Fix == "" {
		x.Fix = "make `" + cmd + "` pass (its output is above; the check is at " + where + ")"
	}
	return x
}

// fixOf names the fix for failures of well-known checks.
func fixOf(argv []string, output string) string {
	cmd := " " + strings.Join(argv, " ") + " "
	switch {
	case strings.Contains(cmd, " makemigrations ") && strings.Contains(cmd, "--check"):
		for _, l := range strings.Split(output, "\n") {
			if app, ok := strings.CutPrefix(strings.TrimSpace(l), "Migrations for '"); ok {
				app = strings.TrimSuffix(app, "':")
				return "models of " + app + " changed without a migration: run `python3 manage.py makemigrations " + app + "`, commit the new migration file and deploy again"
			}
		}
		return "models changed without a migration: run `python3 manage.py makemigrations`, commit the new migration file(s) and deploy again"
	case strings.Contains(cmd, " check ") && strings.Contains(cmd, "--deploy"):
		for _, l := range strings.Split(output, "\n") {
			if strings.Contains(l, "HINT:") {
				return "Django says: " + strings.TrimSpace(l[strings.Index(l, "HINT:")+5:])
			}
		}
		return "correct the settings `manage.py check --deploy` names above"
	}
	return ""
}

// appOfYAML is the app an invalid spec names, for the report.
func appOfYAML(data []byte) string {
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "app:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
