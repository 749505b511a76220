package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// Release statuses.
const (
	ReleasePending = "pending" // created; its deploy has not cut over
	ReleaseActive  = "active"  // serving
	ReleaseRetired = "retired" // served before; kept for rollback
	ReleaseFailed  = "failed"  // its deploy failed or was rolled back
)

// Release is vN of an app: an artifact, a frozen config snapshot and a
// formation. Nothing but its status changes after it is created.
type Release struct {
	App       string
	Version   int
	Status    string
	Cause     string // "deploy", "rollback to v3", "config set FOO"
	Runtime   string
	Artifact  runtime.Artifact
	Spec      *spec.Spec
	SpecYAML  string
	Config    Config
	Formation map[string]int
	DeployID  int64
	// Source is the release whose artifact this one reuses (rollback, config
	// change); 0 when the artifact was built for this release.
	Source int
	// Commit is what the artifact was built from, when it came from git
	// (nil otherwise); a release that reuses an artifact keeps its commit.
	Commit    *Commit
	CreatedAt time.Time
}

// Commit is the source a release was built from, when it came from git:
// the pipeline's commit, or the work tree `moorage deploy` uploaded.
type Commit struct {
	SHA      string `json:"sha,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Author   string `json:"author,omitempty"`
	Message  string `json:"message,omitempty"`  // the subject line
	Describe string `json:"describe,omitempty"` // git describe --always --dirty --tags
}

func (c Commit) String() string {
	if c.SHA == "" {
		return "a working tree (no commit)"
	}
	s := c.SHA
	if len(s) > 12 {
		s = s[:12]
	}
	if c.Branch != "" {
		s += " on " + c.Branch
	}
	if c.Author != "" {
		s += " by " + c.Author
	}
	if m, _, _ := strings.Cut(c.Message, "\n"); m != "" {
		s += ": " + m
	}
	return s
}

// ID is "v<version>".
func (r *Release) ID() string { return ReleaseID(r.Version) }

// ReleaseID formats a version as "v<version>" ("" for 0).
func ReleaseID(v int) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("v%d", v)
}

// Config is a release's frozen configuration: values set with `moorage
// config set`. Secret values are kept sealed (encrypted) here.
type Config struct {
	Env     map[string]string `json:"env,omitempty"`
	Secrets map[string][]byte `json:"secrets,omitempty"` // sealed values
}

// CreateRelease stores r as the next version of r.App and sets r.Version.
func (s *Store) CreateRelease(ctx context.Context, r *Release) error {
	art, _ := json.Marshal(r.Artifact)
	sp, err := json.Marshal(r.Spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	cfg, _ := json.Marshal(r.Config)
	form, _ := json.Marshal(r.Formation)
	commit := ""
	if r.Commit != nil {
		b, _ := json.Marshal(r.Commit)
		commit = string(b)
	}
	if r.Status == "" {
		r.Status = ReleasePending
	}
	r.CreatedAt = time.Now().UTC()
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?`, r.App).Scan(&r.Version); err != nil {
			return fmt.Errorf("next version: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO releases (app, version, status, cause, runtime, artifact, spec, spec_yaml, config, formation, deploy_id, source, commit_info, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.App, r.Version, r.Status, r.Cause, r.Runtime, string(art), string(sp), r.SpecYAML, string(cfg), string(form), nullInt(r.DeployID), nullInt(int64(r.Source)), commit, r.CreatedAt.UnixNano())
		if err != nil {
			return fmt.Errorf("create release of %s: %w", r.App, err)
		}
		return nil
	})
}

// ReserveVersion returns the version the next release of app will get.
func (s *Store) ReserveVersion(ctx context.Context, app string) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?`, app).Scan(&v)
	return v, err
}

// SetReleaseArtifact records the artifact of a pending release once built.
// It is the only change a release accepts besides its status, and only
// while it is pending.
func (s *Store) SetReleaseArtifact(ctx context.Context, app string, version int, a runtime.Artifact) error {
	b, _ := json.Marshal(a)
	res, err := s.db.ExecContext(ctx, `UPDATE releases SET artifact = ? WHERE app = ? AND version = ? AND status = ?`, string(b), app, version, ReleasePending)
	if err != nil {
		return fmt.Errorf("set artifact of %s v%d: %w", app, version, err)
	}
	return mustAffect(res, fmt.Sprintf("pending release %s v%d", app, version))
}

// SetReleaseStatus changes a release's status.
func (s *Store) SetReleaseStatus(ctx context.Context, app string, version int, status string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE releases SET status = ? WHERE app = ? AND version = ?`, status, app, version)
	if err != nil {
		return fmt.Errorf("set status of %s v%d: %w", app, version, err)
	}
	return mustAffect(res, fmt.Sprintf("release %s v%d", app, version))
}

const releaseCols = `app, version, status, cause, runtime, artifact, spec, spec_yaml, config, formation, COALESCE(deploy_id, 0), COALESCE(source, 0), commit_info, created_at`

// GetRelease returns app's release version, or ErrNotFound.
func (s *Store) GetRelease(ctx context.Context, app string, version int) (*Release, error) {
	r, err := scanRelease(s.db.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE app = ? AND version = ?`, app, version))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("release %s of %s: %w", ReleaseID(version), app, ErrNotFound)
	}
	return r, err
}

// ListReleases returns app's releases, newest first.
func (s *Store) ListReleases(ctx context.Context, app string) ([]*Release, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE app = ? ORDER BY version DESC`, app)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []*Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRelease(r scanner) (*Release, error) {
	var rel Release
	var art, sp, cfg, form, commit string
	var created int64
	if err := r.Scan(&rel.App, &rel.Version, &rel.Status, &rel.Cause, &rel.Runtime, &art, &sp, &rel.SpecYAML, &cfg, &form, &rel.DeployID, &rel.Source, &commit, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("read release: %w", err)
	}
	if err := json.Unmarshal([]byte(art), &rel.Artifact); err != nil {
		return nil, fmt.Errorf("decode artifact of %s v%d: %w", rel.App, rel.Version, err)
	}
	rel.Spec = new(spec.Spec)
	if err := json.Unmarshal([]byte(sp), rel.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of %s v%d: %w", rel.App, rel.Version, err)
	}
	if err := json.Unmarshal([]byte(cfg), &rel.Config); err != nil {
		return nil, fmt.Errorf("decode config of %s v%d: %w", rel.App, rel.Version, err)
	}
	_ = json.Unmarshal([]byte(form), &rel.Formation)
	if commit != "" {
		rel.Commit = new(Commit)
		if err := json.Unmarshal([]byte(commit), rel.Commit); err != nil {
			return nil, fmt.Errorf("decode commit of %s v%d: %w", rel.App, rel.Version, err)
		}
	}
	rel.CreatedAt = toTime(created)
	return &rel, nil
}

func nullInt(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }
