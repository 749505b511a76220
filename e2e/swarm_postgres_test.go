package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// swarmPgAccessory is a Postgres accessory db from the image pg (Debian's
// PostgreSQL imported, see postgresImage), backed up with pg_dump. Its
// volume is mounted at the postgres user's home (owned by it in the image,
// which a new volume copies), and the cluster is in a subdirectory initdb
// makes, open to the app's network. It runs on a worker, where the image
// must be shipped. It ends with "volumes:", to replace the spec's own.
func swarmPgAccessory(pg string) string {
	return `accessories:
  db:
    image: ` + pg + `
    user: "70:70"
    command: sh -c 'test -s /var/lib/postgresql/data/PG_VERSION || { initdb -D /var/lib/postgresql/data -U postgres --auth=trust --no-locale -E UTF8 && echo "host all all all trust" >> /var/lib/postgresql/data/pg_hba.conf; }; exec postgres -D /var/lib/postgresql/data -k /tmp -c listen_addresses=*'
    port: 5432
    env: {POSTGRES_USER: postgres, POSTGRES_DB: postgres}
    volumes: ["pgdata:/var/lib/postgresql"]
    health: {command: "pg_isready", interval: 1s, start_period: 60s}
    backup: postgres
    placement: {constraints: ["node.role==worker"]}
volumes:`
}

// A Postgres accessory on a real three-node swarm: its image, loaded on
// the manager only (as a user's `docker load` or `docker build` there),
// reaches the node it is pinned to; the app's one-offs reach it over the
// app's overlay network from any node; `backup create` dumps it with
// pg_dump on its node into a file on the server, `verify` restores that
// into a scratch database, `restore` brings the rows back; its volume is
// archived on its node, verifies, and restores there; an app deploy
// neither restarts nor moves it, and a restart of the accessory finds its
// data on its node.
func swarmPostgresBackup(t *testing.T) {
	pgBin(t)
	s := startServerRT(t, "swarm") // may wait for a cluster slot
	begin := time.Now()
	pg := postgresImage(t)
	// The image goes to the manager only: moorage ships it to the node.
	load := exec.Command("sh", "-c", "docker save \"$1\" | docker -H unix://\"$2\" load -q", "sh", pg, s.swarm.Manager().Socket)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load %s on the manager: %v\n%s", pg, err, out)
	}
	// The app's image is built FROM it, for psql in its one-offs.
	dir := s.hello(t, append(fastSpec, "volumes:", swarmPgAccessory(pg))...)
	df := filepath.Join(dir, "Dockerfile")
	d, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(df, []byte(strings.Replace(string(d), "FROM scratch", "FROM "+pg, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.deploy(dir, 0)
	t.Logf("image and first deploy: %s", time.Since(begin).Round(time.Second))
	accessory := func() psInstance {
		t.Helper()
		var db []psInstance
		for _, in := range s.ps("hello").Instances {
			if in.Kind == "accessory" {
				db = append(db, in)
			}
		}
		if len(db) != 1 || db[0].State != "running" || db[0].Node == "" {
			t.Fatalf("want one running accessory with its node, got %+v", db)
		}
		return db[0]
	}
	db := accessory()
	if db.Node == s.swarm.Manager().Name {
		t.Fatalf("the accessory runs on the manager, %s; its placement says a worker", db.Node)
	}
	psql := func(sql string) string {
		t.Helper()
		out, errOut, code := s.run("run", "-a", "hello", "--", "psql", "-h", "$MOORAGE_ACCESSORY_DB_HOST", "-p", "$MOORAGE_ACCESSORY_DB_PORT",
			"-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql)
		if code != 0 {
			t.Fatalf("psql %q: exit %d\n%s%s", sql, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	rows := "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items"
	psql("CREATE TABLE items (id int primary key, name text); INSERT INTO items VALUES (1, 'anchor'), (2, 'rope'), (3, 'sail')")

	id := postgresBackup(t, s, "hello", "db")
	// The dump is a file on the server, in pg_dump's custom format.
	var file string
	filepath.WalkDir(s.dataDir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), id) && !strings.HasSuffix(e.Name(), ".json") {
			file = p
		}
		return nil
	})
	if b, err := os.ReadFile(file); err != nil || !strings.HasPrefix(string(b), "PGDMP") {
		t.Fatalf("the dump %q on the server: %v (starts %q)", file, err, string(b[:min(len(b), 8)]))
	}

	psql("DELETE FROM items WHERE id = 2; UPDATE items SET name = 'changed' WHERE id = 1; INSERT INTO items VALUES (4, 'new')")
	out := s.mustRun("backup", "verify", "-a", "hello", id)
	if !strings.Contains(out, "public.items: 3 rows") || !strings.Contains(out, "restores and holds data") {
		t.Fatalf("verify:\n%s", out)
	}
	s.mustRun("backup", "restore", "-a", "hello", id)
	if got := psql(rows + "; SELECT count(*) FROM pg_database WHERE datname LIKE 'moorage_verify_%'"); got != "1:anchor,2:rope,3:sail\n0" {
		t.Fatalf("rows after restore, and scratch databases left: %q, want the original three and none", got)
	}

	// The accessory's volume is archived on its node, the accessory
	// paused meanwhile; the archive lands on the server and verifies.
	out = s.mustRun("backup", "create", "-a", "hello", "--volume", "pgdata")
	if !strings.Contains(out, "archived from "+db.Node) || !strings.Contains(out, "paused") {
		t.Fatalf("backup create --volume pgdata:\n%s", out)
	}
	if in := accessory(); in.ID != db.ID || in.Restarts != 0 {
		t.Fatalf("the accessory changed across the volume backup: before %+v, after %+v", db, in)
	}
	var vid string
	for _, x := range backupIDs(t, s, "hello") {
		if strings.HasPrefix(x, "hello-volume-pgdata-") {
			vid = x
		}
	}
	out = s.mustRun("backup", "verify", "-a", "hello", vid)
	if !strings.Contains(out, "restores and holds data") {
		t.Fatalf("verify %s:\n%s", vid, out)
	}
	// Restoring it stops the accessory, replaces the volume's content on
	// its node, and starts it again there: the rows of the backup's time.
	psql("DELETE FROM items WHERE id = 3")
	out = s.mustRun("backup", "restore", "-a", "hello", vid)
	if !strings.Contains(out, "restored "+vid+" into volume pgdata on "+db.Node) {
		t.Fatalf("restore %s:\n%s", vid, out)
	}
	if got := psql(rows); got != "1:anchor,2:rope,3:sail" {
		t.Fatalf("rows after the volume restore: %q", got)
	}
	if in := accessory(); in.Node != db.Node {
		t.Fatalf("the accessory moved from %s to %s", db.Node, in.Node)
	}
	db = accessory()

	// An app deploy leaves the accessory alone: same instance, same node,
	// never restarted, its rows there.
	s.deploy(dir, 0)
	after := accessory()
	if after.ID != db.ID || after.Node != db.Node || after.Restarts != 0 {
		t.Fatalf("the accessory changed across an app deploy: before %+v, after %+v", db, after)
	}
	// A restart of the accessory starts it on the same node, where its
	// volume holds the data.
	s.mustRun("accessory", "restart", "-a", "hello", "db")
	after = accessory()
	if after.Node != db.Node {
		t.Fatalf("the accessory moved from %s to %s", db.Node, after.Node)
	}
	if got := psql(rows); got != "1:anchor,2:rope,3:sail" {
		t.Fatalf("rows after the deploy and the restart: %q", got)
	}
	t.Logf("total after the cluster was up: %s", time.Since(begin).Round(time.Second))
}
