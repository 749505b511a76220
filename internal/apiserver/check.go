package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

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

// check is `moorage check`: it answers the preflight.Report of the upload
// (an api.CheckReport).
// It changes nothing that runs: the build is a throwaway artifact, removed
// at the end, and no release or deploy is recorded.
func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	dir, specName, data, ok := s.upload(w, r)
	if !ok {
		return
	}
	defer os.RemoveAll(dir)
	rt := r.URL.Query().Get("runtime")
	if rt != "" && !spec.KnownRuntime(rt) {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("--runtime %q: use docker, swarm, kubernetes or process", rt))
		return
	}
	rep, err := preflight.Run(r.Context(), s.Engine, specName, data, dir, rt, dryRunPlan)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.log().Info("check", "app", rep.App, "owner", owner(r), "failed", rep.Failed())
	writeJSON(w, http.StatusOK, checkReportOf(rep))
}

// dryRunPlan returns the plan a deploy of sp would run: the engine's dry
// run, which takes no lock and changes nothing, in the text the journal
// of the real deploy records. A dry run the engine refuses gives its
// reason as the note.
func dryRunPlan(ctx context.Context, e *engine.Engine, sp *spec.Spec, data []byte) (plan, note string) {
	op := e.Deploy(engine.DeployRequest{Spec: sp, SpecYAML: string(data), Owner: "moorage check", DryRun: true})
	for i := 0; ; i++ {
		ev, ok := op.Next(ctx, i)
		if !ok {
			break
		}
		if ev.Type == engine.EventPlan {
			plan = ev.Text
		}
	}
	if _, err := op.Wait(ctx); err != nil {
		return plan, err.Error()
	}
	return plan, ""
}
