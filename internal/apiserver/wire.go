package apiserver

import (
	"sort"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/preflight"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// The server's own types, converted to the API's wire types (internal/api)
// where a handler answers with them. The wire types' JSON is the one the
// server's types had: old clients and the dashboard read it.

// logLineOf converts a runtime's log line.
func logLineOf(l runtime.LogLine) api.LogLine { return api.LogLine(l) }

// certInfoOf converts a certificate's description.
func certInfoOf(c certs.Info) api.CertInfo { return api.CertInfo(c) }

// releaseOf converts a store release.
func releaseOf(r *store.Release) api.Release {
	out := api.Release{
		App: r.App, ID: r.ID(), Version: r.Version, Status: r.Status, Cause: r.Cause,
		Runtime: r.Runtime, Artifact: r.Artifact.Ref, Formation: r.Formation,
		DeployID: r.DeployID, CreatedAt: r.CreatedAt, Commit: (*api.Commit)(r.Commit),
	}
	if r.Source != 0 {
		out.Source = store.ReleaseID(r.Source)
	}
	for k := range r.Config.Env {
		out.Config = append(out.Config, k)
	}
	for k := range r.Config.Secrets {
		out.Secrets = append(out.Secrets, k)
	}
	sort.Strings(out.Config)
	sort.Strings(out.Secrets)
	return out
}

// deployOf converts a store deploy.
func deployOf(d *store.Deploy) api.Deploy {
	out := api.Deploy{
		ID: d.ID, App: d.App, Kind: d.Kind, Release: store.ReleaseID(d.Release), From: store.ReleaseID(d.FromRelease),
		Status: d.Status, Phase: d.Phase, Cutover: d.Cutover, Reason: d.Reason, Owner: d.Owner, Plan: d.Plan,
		StartedAt: d.StartedAt, EndedAt: d.EndedAt, Steps: []api.Step{},
	}
	for _, s := range d.Steps {
		out.Steps = append(out.Steps, api.Step{Seq: s.Seq, Name: s.Name, Detail: s.Detail, Outcome: s.Outcome, Output: s.Output,
			StartedAt: s.StartedAt, EndedAt: s.EndedAt, Duration: s.Duration()})
	}
	return out
}

// backupOf converts a store backup.
func backupOf(b *store.Backup) api.Backup {
	return api.Backup{ID: b.ID, Kind: b.Kind, Target: b.Target, Path: b.Path, Size: b.Size, SHA256: b.SHA256,
		Status: b.Status, Error: b.Error, Trigger: b.Trigger, Release: b.Release, CreatedAt: b.CreatedAt,
		VerifiedAt: b.VerifiedAt, VerifyError: b.VerifyError}
}

// checkReportOf is r on the wire.
func checkReportOf(r *preflight.Report) api.CheckReport {
	out := api.CheckReport{App: r.App, Runtime: r.Runtime, Plan: r.Plan, PlanNote: r.PlanNote}
	if r.Results != nil {
		out.Results = make([]api.CheckResult, 0, len(r.Results))
	}
	for _, x := range r.Results {
		out.Results = append(out.Results, api.CheckResult(x))
	}
	return out
}
