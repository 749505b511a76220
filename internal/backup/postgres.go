package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// pgParams is pgParamsOf with the password of a postgres accessory that
// declares it a secret (POSTGRES_PASSWORD, or PGPASSWORD) in PGPASSWORD,
// for the client tools.
func (m *Manager) pgParams(rel *store.Release, name string) (pgParams, error) {
	p := pgParamsOf(rel, name)
	acc := rel.Spec.Accessories[name]
	if acc == nil {
		return p, nil
	}
	for _, k := range []string{"POSTGRES_PASSWORD", "PGPASSWORD"} {
		if !slices.Contains(acc.Secrets, k) {
			continue
		}
		v, err := m.e.OpenSecret(rel, k)
		if err != nil {
			return p, fmt.Errorf("accessory %s: %w", name, err)
		}
		p.env["PGPASSWORD"] = v
	}
	return p, nil
}

// pgParams is how a postgres accessory is reached from inside it.
type pgParams struct {
	db, user string
	env      map[string]string
}

// pgParamsOf reads the database and user from the accessory's env
// (POSTGRES_DB / POSTGRES_USER as the official image, or PGDATABASE /
// PGUSER), defaulting to postgres, and points the client tools at the
// accessory's port.
func pgParamsOf(rel *store.Release, name string) pgParams {
	acc := rel.Spec.Accessories[name]
	p := pgParams{user: firstNonEmpty(acc.Env["PGUSER"], acc.Env["POSTGRES_USER"], "postgres"), env: map[string]string{}}
	p.db = firstNonEmpty(acc.Env["PGDATABASE"], acc.Env["POSTGRES_DB"], p.user)
	p.env["PGPORT"] = strconv.Itoa(acc.Port)
	if rel.Runtime == "process" {
		p.env["PGHOST"] = "127.0.0.1"
	}
	if pw := acc.Env["POSTGRES_PASSWORD"]; pw != "" {
		p.env["PGPASSWORD"] = pw
	}
	return p
}

// accessoryInstance finds a running accessory.
func (m *Manager) accessoryInstance(ctx context.Context, rel *store.Release, name string) (runtime.Runtime, runtime.Instance, error) {
	rt, err := m.e.Runtime(rel.Runtime)
	if err != nil {
		return nil, runtime.Instance{}, err
	}
	if err := engine.Reach(ctx, rt); err != nil { // "not running" would be a lie
		return nil, runtime.Instance{}, err
	}
	ins, err := rt.List(ctx, runtime.Filter{App: rel.App, Kind: runtime.KindAccessory, Service: name})
	if err != nil {
		return nil, runtime.Instance{}, err
	}
	for _, in := range ins {
		if in.State == runtime.StateRunning {
			return rt, in, nil
		}
	}
	return nil, runtime.Instance{}, fmt.Errorf("accessory %s is not running", name)
}

// pgExec runs a postgres client tool inside the accessory.
func pgExec(ctx context.Context, rt runtime.Runtime, in runtime.Instance, p pgParams, stdin io.Reader, stdout io.Writer, args ...string) (string, error) {
	var stderr bytes.Buffer
	so := stdout
	var outBuf bytes.Buffer
	if so == nil {
		so = &outBuf
	}
	code, err := rt.Exec(ctx, in.ID, runtime.ExecSpec{Cmd: args, Env: p.env, Stdin: stdin, Stdout: so, Stderr: &stderr})
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	if code != 0 {
		return "", pgExitError(args[0], code, stderr.String())
	}
	return outBuf.String(), nil
}

// pgExitError is the error of a client tool that exited with code: the
// last lines of its stderr, or, for a tool that could not be run (126,
// 127 and nothing said), which tools the accessory's image must have.
func pgExitError(tool string, code int, stderr string) error {
	msg := strings.TrimSpace(lastLines(stderr, 5))
	if msg == "" && (code == 126 || code == 127) {
		msg = fmt.Sprintf("could not run %s in the accessory: backup: postgres runs pg_dump, pg_restore, psql, createdb and dropdb inside it, so its image must have them on its PATH", tool)
	}
	return fmt.Errorf("%s exited with status %d: %s", tool, code, msg)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// backupPostgres dumps the accessory's database with pg_dump in custom
// format, run inside the accessory (its own tools and environment). pg_dump
// takes a consistent snapshot by itself; nothing is paused.
func (m *Manager) backupPostgres(ctx context.Context, rel *store.Release, name string, b *store.Backup, out io.Writer) error {
	rt, in, err := m.accessoryInstance(ctx, rel, name)
	if err != nil {
		return err
	}
	p, err := m.pgParams(rel, name)
	if err != nil {
		return err
	}
	err = writeArchive(b, func(w io.Writer) error {
		_, err := pgExec(ctx, rt, in, p, nil, w, "pg_dump", "--format=custom", "--compress=6", "--no-owner", "--username="+p.user, "--dbname="+p.db)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dumped database %s of %s\n", p.db, name)
	return nil
}

// restorePostgres restores a dump into the accessory's database in one
// transaction: the app sees the old data until it commits.
func (m *Manager) restorePostgres(ctx context.Context, rel *store.Release, b *store.Backup, out io.Writer) error {
	rt, in, err := m.accessoryInstance(ctx, rel, b.Target)
	if err != nil {
		return err
	}
	p, err := m.pgParams(rel, b.Target)
	if err != nil {
		return err
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := pgExec(ctx, rt, in, p, f, nil, "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
		"--username="+p.user, "--dbname="+p.db); err != nil {
		return err
	}
	fmt.Fprintf(out, "restored %s into database %s of %s\n", b.ID, p.db, b.Target)
	return nil
}

// verifyPostgres restores a dump into a scratch database next to the real
// one, checks that it holds tables with rows, and drops it.
func (m *Manager) verifyPostgres(ctx context.Context, rel *store.Release, b *store.Backup, out io.Writer) error {
	rt, in, err := m.accessoryInstance(ctx, rel, b.Target)
	if err != nil {
		return fmt.Errorf("verify needs the accessory to restore into a scratch database: %w", err)
	}
	p, err := m.pgParams(rel, b.Target)
	if err != nil {
		return err
	}
	scratch := fmt.Sprintf("moorage_verify_%d", time.Now().UnixNano())
	if _, err := pgExec(ctx, rt, in, p, nil, nil, "createdb", "--username="+p.user, scratch); err != nil {
		return err
	}
	defer pgExec(context.WithoutCancel(ctx), rt, in, p, nil, nil, "dropdb", "--if-exists", "--username="+p.user, scratch)
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := pgExec(ctx, rt, in, p, f, nil, "pg_restore", "--no-owner", "--exit-on-error", "--username="+p.user, "--dbname="+scratch); err != nil {
		return fmt.Errorf("restore into scratch database %s: %w", scratch, err)
	}
	query := `SELECT format('SELECT %L || ''|'' || count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname, tablename)
FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 \gexec
`
	res, err := pgExec(ctx, rt, in, p, strings.NewReader(query), nil, "psql", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--username="+p.user, "--dbname="+scratch)
	if err != nil {
		return err
	}
	tables, rows := 0, int64(0)
	sc := bufio.NewScanner(strings.NewReader(res))
	for sc.Scan() {
		name, count, ok := strings.Cut(strings.TrimSpace(sc.Text()), "|")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(count, 10, 64)
		tables++
		rows += n
		fmt.Fprintf(out, "  %s: %d rows\n", name, n)
	}
	if tables == 0 {
		return errors.New("the dump restores, but holds no table")
	}
	if rows == 0 {
		return fmt.Errorf("the dump restores %d tables, but no row", tables)
	}
	fmt.Fprintf(out, "restored into scratch database %s: %d tables, %d rows\n", scratch, tables, rows)
	return nil
}
