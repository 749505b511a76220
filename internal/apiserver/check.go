package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/preflight"
	"github.com/moorage/moorage/internal/spec"
)

// upload unpacks a request's upload (a gzip tar of the app directory) into
// a new directory under the upload dir and reads its spec. On error it has
// answered the request and removed the directory.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) (dir, specName string, data []byte, ok bool) {
	if err := os.MkdirAll(s.UploadDir, 0o700); err != nil {
		writeErr(w, err)
		return "", "", nil, false
	}
	dir, err := os.MkdirTemp(s.UploadDir, "upload-")
	if err != nil {
		writeErr(w, err)
		return "", "", nil, false
	}
	fail := func(code int, kind, msg string) (string, string, []byte, bool) {
		os.RemoveAll(dir)
		writeError(w, code, kind, msg)
		return "", "", nil, false
	}
	if _, err := archive.Unpack(r.Body, dir, s.Limits); err != nil {
		if errors.Is(err, archive.ErrTooLarge) {
			return fail(http.StatusRequestEntityTooLarge, "too_large", "upload: "+err.Error())
		}
		return fail(http.StatusBadRequest, "bad_request", "upload: "+err.Error())
	}
	specName = r.Header.Get(api.HeaderSpec)
	if specName == "" {
		specName = "moorage.yaml"
	}
	if !filepath.IsLocal(specName) {
		return fail(http.StatusBadRequest, "bad_request", "spec file must be inside the uploaded directory")
	}
	data, err = os.ReadFile(filepath.Join(dir, specName))
	if err != nil {
		return fail(http.StatusBadRequest, "invalid_spec", fmt.Sprintf("the upload has no %s: create one with `moorage init`", specName))
	}
	return dir, specName, data, true
}

// check is `moorage check`: it answers a preflight.Report of the upload.
// It changes nothing that runs: the build is a throwaway artifact, removed
// at the end, and no release or deploy is recorded.
func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	dir, specName, data, ok := s.upload(w, r)
	if !ok {
		return
	}
	defer os.RemoveAll(dir)
	rt := r.URL.Query().Get("runtime")
	if rt != "" && rt != spec.RuntimeDocker && rt != spec.RuntimeProcess {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("--runtime %q: use docker or process", rt))
		return
	}
	rep, err := Preflight(r.Context(), s.Engine, specName, data, dir, rt)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.log().Info("check", "app", rep.App, "owner", owner(r), "failed", rep.Failed())
	writeJSON(w, http.StatusOK, rep)
}

// Preflight runs `moorage check` on an app directory: the spec, the plan,
// the security findings and the spec's checks in a throwaway build. The
// engine owns dir from now on. The pipeline's check stage runs it too.
func Preflight(ctx context.Context, e *engine.Engine, specName string, data []byte, dir, rt string) (*preflight.Report, error) {
	rep := &preflight.Report{}
	sp, err := spec.ParseFor(specName, data, rt)
	rep.Results = append(rep.Results, preflight.SpecResult(specName, err))
	if err != nil {
		rep.App = appOfYAML(data)
		return rep, nil
	}
	rep.App, rep.Runtime = sp.App, sp.Runtime
	for _, w := range sp.Warnings() {
		rep.Results = append(rep.Results, preflight.Result{Name: "spec.warning", Status: preflight.Warn, Message: w, Fix: "remove the setting, or deploy on the runtime it is for"})
	}
	rep.Plan, rep.PlanNote = dryRunPlan(ctx, e, sp, data)

	vars, err := e.Store().GetConfig(ctx, sp.App)
	if err != nil {
		return nil, err
	}
	cfg := preflight.Config{}
	for _, v := range vars {
		cfg[v.Key] = v.Secret
	}
	rep.Results = append(rep.Results, preflight.Security(sp, cfg, os.Geteuid() == 0)...)

	if len(sp.Checks) == 0 {
		rep.Results = append(rep.Results, preflight.Result{Name: "checks", Status: preflight.Warn,
			Message: "the spec has no checks: nothing is tried in the build before it serves",
			Fix:     "add checks: to moorage.yaml, e.g. checks: [python3 manage.py check --deploy]"})
		return rep, nil
	}
	res, err := e.RunInBuild(ctx, engine.InBuildRequest{Spec: sp, ContextDir: dir, Tasks: sp.Checks})
	if err != nil {
		return nil, err
	}
	if res.BuildErr != nil {
		rep.Results = append(rep.Results, preflight.Result{Name: "build", Status: preflight.Fail,
			Message: res.BuildErr.Error(), Output: res.BuildOutput, Seconds: res.BuildTime.Seconds(),
			Fix: "fix the build (see its output), then run moorage check again"})
		return rep, nil
	}
	rep.Results = append(rep.Results, preflight.Result{Name: "build", Status: preflight.Pass, Message: "built", Seconds: res.BuildTime.Seconds()})
	for _, run := range res.Runs {
		rep.Results = append(rep.Results, checkResult(specName, run))
	}
	return rep, nil
}

// checkResult turns a check's run into a finding; the fix names the
// check's last line of output, where tools say what to do.
func checkResult(specName string, run engine.CommandRun) preflight.Result {
	cmd := strings.Join(run.Command, " ")
	x := preflight.Result{Name: fmt.Sprintf("checks[%d]", run.Index), Output: run.Output, Seconds: run.Duration.Seconds()}
	if run.OK() {
		x.Status, x.Message = preflight.Pass, "`"+cmd+"` passed"
		return x
	}
	x.Status = preflight.Fail
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

// dryRunPlan returns the plan a deploy of sp would run. The dry run lives
// in the engine (PlanDeploy), which this build does not have yet: it says
// so instead of printing a plan.
func dryRunPlan(ctx context.Context, e *engine.Engine, sp *spec.Spec, data []byte) (plan, note string) {
	return "", "dry run not available in this build"
}
