package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Deploy kinds.
const (
	KindDeploy    = "deploy"
	KindRollback  = "rollback"
	KindConfig    = "config"
	KindScale     = "scale"
	KindRecover   = "recover"
	KindRestore   = "restore"
	KindAccessory = "accessory"
	// KindPipeline is a continuous-deployment pipeline (internal/pipeline):
	// its deploy stage is a deploy of its own record. Its runner, not the
	// engine's recovery, closes it after a crash.
	KindPipeline = "pipeline"
)

// Deploy statuses.
const (
	DeployRunning    = "running"
	DeploySucceeded  = "succeeded"
	DeployFailed     = "failed"
	DeployRolledBack = "rolled_back" // cut over, then rolled back by the monitor
)

// Step outcomes.
const (
	StepRunning     = "running"
	StepOK          = "ok"
	StepFailed      = "failed"
	StepSkipped     = "skipped"
	StepInterrupted = "interrupted" // the server stopped while it ran
)

// MaxStepOutput bounds the output kept per step (the tail is kept).
const MaxStepOutput = 64 << 10

// Deploy is one run of the deploy contract (or a rollback, config change,
// scale), with its journal of steps.
type Deploy struct {
	ID          int64
	App         string
	Kind        string
	Release     int // target release
	FromRelease int // active release when it started (0: none)
	Status      string
	Phase       string // the journal: the step that last started
	Cutover     bool   // the commit point: traffic moved to Release
	Reason      string // why it failed
	Owner       string // who asked: "alice@laptop (pid 123)"
	Plan        string
	// Parent is the record this one ran for (a pipeline's, for the deploy
	// of its deploy stage); 0 when none.
	Parent    int64
	StartedAt time.Time
	EndedAt   time.Time
	Steps     []Step
}

// Step is one journaled step of a deploy.
type Step struct {
	Seq       int
	Name      string
	Detail    string
	StartedAt time.Time
	EndedAt   time.Time
	Outcome   string
	Output    string
}

// Duration is how long the step took (so far).
func (s Step) Duration() time.Duration {
	if s.EndedAt.IsZero() {
		return time.Since(s.StartedAt)
	}
	return s.EndedAt.Sub(s.StartedAt)
}

// CreateDeploy records a new running deploy and sets d.ID.
func (s *Store) CreateDeploy(ctx context.Context, d *Deploy) error {
	d.Status = DeployRunning
	d.StartedAt = time.Now().UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO deploys (app, kind, release, from_release, status, phase, owner, plan, parent, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.App, d.Kind, nullInt(int64(d.Release)), nullInt(int64(d.FromRelease)), d.Status, d.Phase, d.Owner, d.Plan, d.Parent, d.StartedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("create deploy: %w", err)
	}
	d.ID, err = res.LastInsertId()
	return err
}

// SetDeployRelease records the target release of a deploy once created.
func (s *Store) SetDeployRelease(ctx context.Context, id int64, version int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deploys SET release = ? WHERE id = ?`, version, id)
	return err
}

// SetDeployPlan records the plan a deploy executes.
func (s *Store) SetDeployPlan(ctx context.Context, id int64, plan string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deploys SET plan = ? WHERE id = ?`, plan, id)
	return err
}

// FinishDeploy ends a deploy with status and reason, and interrupts any
// step still running.
func (s *Store) FinishDeploy(ctx context.Context, id int64, status, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		t := now()
		if _, err := tx.ExecContext(ctx, `UPDATE deploy_steps SET outcome = ?, ended_at = ? WHERE deploy_id = ? AND outcome = ?`, StepInterrupted, t, id, StepRunning); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE deploys SET status = ?, reason = ?, ended_at = ? WHERE id = ?`, status, reason, t, id)
		if err != nil {
			return fmt.Errorf("finish deploy %d: %w", id, err)
		}
		return mustAffect(res, fmt.Sprintf("deploy %d", id))
	})
}

// StartStep journals that step name of deploy id begins, and returns its
// sequence number. It also records the step as the deploy's phase.
func (s *Store) StartStep(ctx context.Context, id int64, name, detail string) (int, error) {
	var seq int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM deploy_steps WHERE deploy_id = ?`, id).Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO deploy_steps (deploy_id, seq, name, detail, started_at) VALUES (?, ?, ?, ?, ?)`, id, seq, name, detail, now()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE deploys SET phase = ? WHERE id = ?`, name, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("journal step %s of deploy %d: %w", name, id, err)
	}
	return seq, nil
}

// FinishStep records a step's outcome and output (the tail is kept when it
// is longer than MaxStepOutput).
func (s *Store) FinishStep(ctx context.Context, id int64, seq int, outcome, output string) error {
	if len(output) > MaxStepOutput {
		output = "…" + output[len(output)-MaxStepOutput:]
	}
	_, err := s.db.ExecContext(ctx, `UPDATE deploy_steps SET outcome = ?, output = ?, ended_at = ? WHERE deploy_id = ? AND seq = ?`, outcome, output, now(), id, seq)
	if err != nil {
		return fmt.Errorf("journal end of step %d of deploy %d: %w", seq, id, err)
	}
	return nil
}

// CommitCutover is the deploy's commit point: in one transaction the target
// release becomes the app's active release (the previous one retired) and
// the deploy is marked as cut over.
func (s *Store) CommitCutover(ctx context.Context, id int64, app string, version int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := activate(ctx, tx, app, version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE deploys SET cutover = 1 WHERE id = ?`, id)
		return err
	})
}

// Activate makes version the app's active release (the previous active one
// is retired) without touching any deploy.
func (s *Store) Activate(ctx context.Context, app string, version int) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return activate(ctx, tx, app, version) })
}

func activate(ctx context.Context, tx *sql.Tx, app string, version int) error {
	if _, err := tx.ExecContext(ctx, `UPDATE releases SET status = ? WHERE app = ? AND status = ? AND version != ?`, ReleaseRetired, app, ReleaseActive, version); err != nil {
		return fmt.Errorf("retire active release of %s: %w", app, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE releases SET status = ? WHERE app = ? AND version = ?`, ReleaseActive, app, version)
	if err != nil {
		return fmt.Errorf("activate %s v%d: %w", app, version, err)
	}
	if err := mustAffect(res, fmt.Sprintf("release %s v%d", app, version)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE apps SET current_release = ?, updated_at = ? WHERE name = ?`, version, now(), app)
	return err
}

const deployCols = `id, app, kind, COALESCE(release, 0), COALESCE(from_release, 0), status, phase, cutover, reason, owner, plan, parent, started_at, ended_at`

// GetDeploy returns a deploy with its steps.
func (s *Store) GetDeploy(ctx context.Context, id int64) (*Deploy, error) {
	d, err := scanDeploy(s.db.QueryRowContext(ctx, `SELECT `+deployCols+` FROM deploys WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	d.Steps, err = s.steps(ctx, id)
	return d, err
}

// ListDeploys returns app's most recent deploys, newest first, with steps.
func (s *Store) ListDeploys(ctx context.Context, app string, limit int) ([]*Deploy, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deployCols+` FROM deploys WHERE app = ? ORDER BY id DESC LIMIT ?`, app, limit)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	out, err := collectDeploys(rows)
	if err != nil {
		return nil, err
	}
	for _, d := range out {
		if d.Steps, err = s.steps(ctx, d.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ChildDeploy returns the record that ran for parent (a pipeline's deploy
// stage), or nil when none was made.
func (s *Store) ChildDeploy(ctx context.Context, parent int64) (*Deploy, error) {
	d, err := scanDeploy(s.db.QueryRowContext(ctx, `SELECT `+deployCols+` FROM deploys WHERE parent = ? ORDER BY id LIMIT 1`, parent))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return d, err
}

// RunningDeploys returns the deploys that have not ended, oldest first
// (after a crash: the ones recovery must finish or undo).
func (s *Store) RunningDeploys(ctx context.Context) ([]*Deploy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deployCols+` FROM deploys WHERE status = ? ORDER BY id`, DeployRunning)
	if err != nil {
		return nil, fmt.Errorf("list running deploys: %w", err)
	}
	out, err := collectDeploys(rows)
	if err != nil {
		return nil, err
	}
	for _, d := range out {
		if d.Steps, err = s.steps(ctx, d.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func collectDeploys(rows *sql.Rows) ([]*Deploy, error) {
	defer rows.Close()
	var out []*Deploy
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) steps(ctx context.Context, id int64) ([]Step, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, name, detail, started_at, ended_at, outcome, output FROM deploy_steps WHERE deploy_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("read steps of deploy %d: %w", id, err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var started int64
		var ended sql.NullInt64
		if err := rows.Scan(&st.Seq, &st.Name, &st.Detail, &started, &ended, &st.Outcome, &st.Output); err != nil {
			return nil, err
		}
		st.StartedAt, st.EndedAt = toTime(started), nullTime(ended)
		out = append(out, st)
	}
	return out, rows.Err()
}

func scanDeploy(r scanner) (*Deploy, error) {
	var d Deploy
	var started int64
	var ended sql.NullInt64
	if err := r.Scan(&d.ID, &d.App, &d.Kind, &d.Release, &d.FromRelease, &d.Status, &d.Phase, &d.Cutover, &d.Reason, &d.Owner, &d.Plan, &d.Parent, &started, &ended); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("deploy: %w", ErrNotFound)
		}
		return nil, fmt.Errorf("read deploy: %w", err)
	}
	d.StartedAt, d.EndedAt = toTime(started), nullTime(ended)
	return &d, nil
}
