package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order, each in its own transaction, and never
// edited once released: a schema change is a new entry.
var migrations = []string{
	// 1: the core schema.
	`
CREATE TABLE apps (
	name            TEXT PRIMARY KEY,
	runtime         TEXT NOT NULL,
	current_release INTEGER,
	formation       TEXT NOT NULL DEFAULT '{}',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE TABLE releases (
	app        TEXT NOT NULL REFERENCES apps(name),
	version    INTEGER NOT NULL,
	status     TEXT NOT NULL,
	cause      TEXT NOT NULL,
	runtime    TEXT NOT NULL,
	artifact   TEXT NOT NULL,
	spec       TEXT NOT NULL,
	spec_yaml  TEXT NOT NULL,
	config     TEXT NOT NULL,
	formation  TEXT NOT NULL,
	deploy_id  INTEGER,
	source     INTEGER,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (app, version)
);
CREATE TABLE deploys (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	app          TEXT NOT NULL REFERENCES apps(name),
	kind         TEXT NOT NULL,
	release      INTEGER,
	from_release INTEGER,
	status       TEXT NOT NULL,
	phase        TEXT NOT NULL DEFAULT '',
	cutover      INTEGER NOT NULL DEFAULT 0,
	reason       TEXT NOT NULL DEFAULT '',
	owner        TEXT NOT NULL,
	plan         TEXT NOT NULL DEFAULT '',
	started_at   INTEGER NOT NULL,
	ended_at     INTEGER
);
CREATE INDEX deploys_app ON deploys(app, id);
CREATE TABLE deploy_steps (
	deploy_id  INTEGER NOT NULL REFERENCES deploys(id),
	seq        INTEGER NOT NULL,
	name       TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '',
	started_at INTEGER NOT NULL,
	ended_at   INTEGER,
	outcome    TEXT NOT NULL DEFAULT 'running',
	output     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (deploy_id, seq)
);
CREATE TABLE locks (
	app          TEXT PRIMARY KEY,
	owner        TEXT NOT NULL,
	operation    TEXT NOT NULL,
	deploy_id    INTEGER,
	server       TEXT NOT NULL,
	acquired_at  INTEGER NOT NULL,
	heartbeat_at INTEGER NOT NULL
);
CREATE TABLE instances (
	id         TEXT PRIMARY KEY,
	app        TEXT NOT NULL,
	service    TEXT NOT NULL,
	release    TEXT NOT NULL,
	idx        INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	deploy_id  INTEGER,
	state      TEXT NOT NULL,
	restarts   INTEGER NOT NULL DEFAULT 0,
	last_exit  INTEGER,
	last_error TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX instances_app ON instances(app, service);
CREATE TABLE events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	app      TEXT NOT NULL,
	time     INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	instance TEXT NOT NULL DEFAULT '',
	message  TEXT NOT NULL
);
CREATE INDEX events_app ON events(app, id);
CREATE TABLE config (
	app    TEXT NOT NULL,
	key    TEXT NOT NULL,
	value  BLOB NOT NULL,
	secret INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (app, key)
);
`,
	// 2: backups, and maintenance mode per app.
	`
CREATE TABLE backups (
	id           TEXT PRIMARY KEY,
	app          TEXT NOT NULL,
	kind         TEXT NOT NULL,
	target       TEXT NOT NULL,
	path         TEXT NOT NULL,
	size         INTEGER NOT NULL DEFAULT 0,
	sha256       TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL,
	error        TEXT NOT NULL DEFAULT '',
	trigger      TEXT NOT NULL,
	release      TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	finished_at  INTEGER,
	verified_at  INTEGER,
	verify_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX backups_app ON backups(app, created_at);
ALTER TABLE apps ADD COLUMN maintenance TEXT NOT NULL DEFAULT '';
`,
	// 3: the backups' own journal (instances paused for a copy, volume
	// restores in progress, the last schedule slot run), per app.
	`
CREATE TABLE backup_journal (
	app        TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (app, key)
);
`,
	// The dashboard's users (bcrypt hashes) and its audit of actions.
	`
CREATE TABLE dashboard_users (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE dashboard_audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	user    TEXT NOT NULL,
	ip      TEXT NOT NULL,
	action  TEXT NOT NULL,
	target  TEXT NOT NULL,
	outcome TEXT NOT NULL
);
`,
	// 5: notifiers (per app, or server-wide with app ''), their sealed
	// targets and delivery health, and the notifier's cursors.
	`
CREATE TABLE notifiers (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	app           TEXT NOT NULL DEFAULT '',
	kind          TEXT NOT NULL,
	label         TEXT NOT NULL,
	target        BLOB NOT NULL,
	created_at    INTEGER NOT NULL,
	last_ok_at    INTEGER,
	last_error    TEXT NOT NULL DEFAULT '',
	last_error_at INTEGER,
	failures      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE notify_state (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
`,
	// 6: the commit a release was built from (JSON store.Commit, '' when not
	// from git).
	`
ALTER TABLE releases ADD COLUMN commit_info TEXT NOT NULL DEFAULT '';
`,
	// 7: the record an operation ran for (a pipeline's deploy stage: the
	// pipeline's record); 0 when none.
	`
ALTER TABLE deploys ADD COLUMN parent INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deploys_parent ON deploys (parent) WHERE parent != 0;
`,
	// 8: registry logins (`moorage registry login`): the user name in
	// clear, the password sealed with the server's secrets key.
	`
CREATE TABLE registry_logins (
	host       TEXT PRIMARY KEY,
	username   TEXT NOT NULL,
	password   BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
`,
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("store schema version %d is newer than this moorage (%d): upgrade moorage, or restore a backup of the data dir", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, now())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply schema migration %d: %w", v, err)
		}
	}
	return nil
}
