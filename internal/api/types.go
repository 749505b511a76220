// Package api holds the wire types of moorage's control API, shared by the
// server (internal/apiserver) and internal/client: HTTP + JSON over the unix
// socket (or an ssh-forwarded stream). Long operations answer with a stream
// of newline-delimited JSON events. This file holds the wire types shared
// with internal/client.
//
// The package imports none of the server's internals: the server converts
// its own types (the store's, the runtimes', the certificates') to these
// where it answers (internal/apiserver, internal/query), and the client and
// the CLI read these instead of them.
package api

import "time"

// Headers and query parameters.
const (
	HeaderOwner = "X-Moorage-Owner" // who runs the command: "alice@laptop (pid 42)"
	HeaderSpec  = "X-Moorage-Spec"  // spec file name inside the upload (default moorage.yaml)
	// QueryDryRun on POST /v1/deploys (dry_run=1) plans the deploy and
	// changes nothing; the other operations take a dry_run field.
	QueryDryRun   = "dry_run"
	ContentNDJSON = "application/x-ndjson"
)

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
	// Code is machine-readable: invalid_spec, locked, not_found, bad_request,
	// too_large, internal.
	Code string `json:"code"`
}

// Version answers GET /v1/version.
type Version struct {
	Version  string   `json:"version"`
	Schema   int      `json:"schema"`
	Runtimes []string `json:"runtimes"`
	DataDir  string   `json:"data_dir"`
	HTTP     string   `json:"http"`
	HTTPS    string   `json:"https,omitempty"`
	// Features are what this server can do that older ones could not; a
	// client asks before relying on one (an older server would ignore the
	// request's field and carry the operation out).
	Features []string `json:"features,omitempty"`
}

// Features of a server (Version.Features).
const (
	// FeatureDryRun: deploy, rollback, scale and config plan with
	// dry_run and change nothing.
	FeatureDryRun = "dry-run"
)

// ServerFeatures are this build's features.
var ServerFeatures = []string{FeatureDryRun}

// App is one line of GET /v1/apps.
type App struct {
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	Active  string `json:"active,omitempty"`
}

// Release is one release of GET /v1/apps/{app}/releases.
type Release struct {
	App       string         `json:"app"`
	ID        string         `json:"id"`
	Version   int            `json:"version"`
	Status    string         `json:"status"`
	Cause     string         `json:"cause"`
	Runtime   string         `json:"runtime"`
	Artifact  string         `json:"artifact"`
	Source    string         `json:"source,omitempty"`
	Config    []string       `json:"config,omitempty"`  // names of config values
	Secrets   []string       `json:"secrets,omitempty"` // names of secrets, never values
	Formation map[string]int `json:"formation"`
	DeployID  int64          `json:"deploy_id,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	// Pruned: the artifact is gone, the release can no longer be rolled
	// back to.
	Pruned bool `json:"pruned,omitempty"`
	// Commit is what the release was built from, when known (a rollback
	// or config change keeps its artifact's).
	Commit *Commit `json:"commit,omitempty"`
}

// Commit is the source a release was built from, when it came from git:
// the pipeline's commit, or the work tree `moorage deploy` uploaded (an
// upload names it in the X-Moorage-Commit-* headers).
type Commit struct {
	SHA      string `json:"sha,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Author   string `json:"author,omitempty"`
	Message  string `json:"message,omitempty"`  // the subject line
	Describe string `json:"describe,omitempty"` // git describe --always --dirty --tags
}

// Short is the commit as a table shows it: git describe, else the short
// sha ("" without a commit).
func (c *Commit) Short() string {
	switch {
	case c == nil:
		return ""
	case c.Describe != "":
		return c.Describe
	case len(c.SHA) > 12:
		return c.SHA[:12]
	}
	return c.SHA
}

// Webhook is an app's webhook (PUT and GET /v1/apps/{app}/webhook).
type Webhook struct {
	App    string `json:"app"`
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	// Secret is set only in the answer to PUT, which makes a new one.
	Secret string `json:"secret,omitempty"`
	// DeployKey is the public half of the key the server fetches an ssh
	// repository with (an ssh-ed25519 authorized_keys line): add it to the
	// repository as a read-only deploy key.
	DeployKey string `json:"deploy_key,omitempty"`
	// NewDeployKey, in a PUT, replaces the deploy key (else it is kept).
	NewDeployKey bool `json:"new_deploy_key,omitempty"`
}

// Headers of an upload (deploy, pipeline) naming its commit.
const (
	HeaderCommitSHA      = "X-Moorage-Commit-Sha"
	HeaderCommitBranch   = "X-Moorage-Commit-Branch"
	HeaderCommitAuthor   = "X-Moorage-Commit-Author"
	HeaderCommitMessage  = "X-Moorage-Commit-Message" // URL query-escaped (a header holds no newline)
	HeaderCommitDescribe = "X-Moorage-Commit-Describe"
)

// Deploy is one deploy with its steps.
type Deploy struct {
	ID        int64     `json:"id"`
	App       string    `json:"app"`
	Kind      string    `json:"kind"`
	Release   string    `json:"release,omitempty"`
	From      string    `json:"from,omitempty"`
	Status    string    `json:"status"`
	Phase     string    `json:"phase"`
	Cutover   bool      `json:"cutover"`
	Reason    string    `json:"reason,omitempty"`
	Owner     string    `json:"owner"`
	Plan      string    `json:"plan,omitempty"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Steps     []Step    `json:"steps"`
}

// Step is one journaled step.
type Step struct {
	Seq       int           `json:"seq"`
	Name      string        `json:"name"`
	Detail    string        `json:"detail"`
	Outcome   string        `json:"outcome"`
	Output    string        `json:"output,omitempty"`
	StartedAt time.Time     `json:"started_at"`
	EndedAt   time.Time     `json:"ended_at,omitzero"`
	Duration  time.Duration `json:"duration"`
}

// RollbackRequest is the body of POST /v1/apps/{app}/rollback.
type RollbackRequest struct {
	To       int  `json:"to,omitempty"` // 0: the previous release
	Wait     bool `json:"wait,omitempty"`
	RunTasks bool `json:"run_tasks,omitempty"`
	DryRun   bool `json:"dry_run,omitempty"` // print the plan, change nothing
}

// ConfigRequest is the body of POST /v1/apps/{app}/config. Secret values
// travel only in this request; no answer ever contains them.
type ConfigRequest struct {
	Set      map[string]string `json:"set,omitempty"`
	Secrets  map[string]string `json:"secrets,omitempty"`
	Unset    []string          `json:"unset,omitempty"`
	NoDeploy bool              `json:"no_deploy,omitempty"`
	Wait     bool              `json:"wait,omitempty"`
	DryRun   bool              `json:"dry_run,omitempty"` // print the plan, change nothing
}

// StopStartRequest is the body of POST /v1/apps/{app}/stop and /start.
type StopStartRequest struct {
	Wait   bool `json:"wait,omitempty"`
	DryRun bool `json:"dry_run,omitempty"` // print the plan, change nothing
}

// DestroyRequest is the body of POST /v1/apps/{app}/destroy.
type DestroyRequest struct {
	// Yes confirms; without it the server only prints the plan and
	// refuses.
	Yes bool `json:"yes,omitempty"`
	// Volumes deletes the app's volumes and backups too.
	Volumes bool `json:"volumes,omitempty"`
	Wait    bool `json:"wait,omitempty"`
	DryRun  bool `json:"dry_run,omitempty"`
}

// AccessoryRequest is the body of POST
// /v1/apps/{app}/accessories/{name}/{restart,stop,start,remove}.
type AccessoryRequest struct {
	Wait   bool `json:"wait,omitempty"`
	DryRun bool `json:"dry_run,omitempty"`
	// Volumes (remove): delete the accessory's volumes too.
	Volumes bool `json:"volumes,omitempty"`
}

// ScaleRequest is the body of POST /v1/apps/{app}/scale.
type ScaleRequest struct {
	Replicas map[string]int `json:"replicas"`
	Wait     bool           `json:"wait,omitempty"`
	DryRun   bool           `json:"dry_run,omitempty"` // print the plan, change nothing
}

// BackupRequest is the body of POST /v1/apps/{app}/backups.
type BackupRequest struct {
	Volumes     []string `json:"volumes,omitempty"`
	Accessories []string `json:"accessories,omitempty"`
	To          string   `json:"to,omitempty"`
}

// Backup is one backup of GET /v1/apps/{app}/backups.
type Backup struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Target      string    `json:"target"`
	Path        string    `json:"path"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256,omitempty"`
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
	Trigger     string    `json:"trigger"`
	Release     string    `json:"release,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	VerifiedAt  time.Time `json:"verified_at,omitzero"`
	VerifyError string    `json:"verify_error,omitempty"`
}

// LogLine is one line an instance printed, as GET /v1/apps/{app}/logs
// streams it (one JSON object a line; a last {"error": ...} says why the
// stream stopped).
type LogLine struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"` // "stdout" or "stderr"
	Text     string    `json:"text"`
}

// CertInfo describes one certificate of GET /v1/certs (`moorage certs`).
type CertInfo struct {
	App    string   `json:"app"`
	Mode   string   `json:"mode"`  // auto, internal or files (the route's tls:)
	Names  []string `json:"names"` // what it covers; for a pending one, the hosts it will cover
	Status string   `json:"status"`
	Issuer string   `json:"issuer,omitempty"`
	Serial string   `json:"serial,omitempty"` // hex
	// NotBefore and NotAfter bound the certificate's validity (zero: none
	// yet).
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// LastRenewal is when it was last obtained or renewed (ACME, internal)
	// or loaded from its files (own certificates), by the server process.
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// LastError is the last failure to obtain, renew or reload it, cleared
	// by the next success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextAttempt is when a certificate that could not be obtained is
	// tried again (ACME; zero when no attempt is waiting).
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Managed: moorage renews it (auto, internal); false for own files.
	Managed bool `json:"managed"`
}
