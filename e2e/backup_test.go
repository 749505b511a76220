package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// backupIDs returns the IDs `backup list` prints (first field of each line).
func backupIDs(t *testing.T, s *server, app string) []string {
	t.Helper()
	var ids []string
	for i, l := range scanLines(s.mustRun("backup", "list", "-a", app)) {
		if i == 0 {
			continue // header
		}
		ids = append(ids, strings.Fields(l)[0])
	}
	return ids
}

// A volume backup restores the volume as it was.
func TestVolumeBackupRoundTrip(t *testing.T) { runtimes(t, testVolumeBackupRoundTrip) }

func testVolumeBackupRoundTrip(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	schema := volumeFile(s, "hello", "schema.json")
	if schema == "" {
		t.Fatal("the migration wrote no schema.json")
	}
	out := s.mustRun("backup", "create", "-a", "hello", "--volume", "data")
	if !strings.Contains(out, "paused") || !strings.Contains(out, "succeeded") {
		t.Fatalf("backup create:\n%s", out)
	}
	ids := backupIDs(t, s, "hello")
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "hello-volume-data-") {
		t.Fatalf("backup list: %v", ids)
	}
	id := ids[0]
	// The archive and its manifest are in the default backup directory.
	if m, _ := filepath.Glob(filepath.Join(s.dataDir, "backups", "hello", id+".*")); len(m) != 2 {
		t.Fatalf("archive files: %v", m)
	}
	// Change the volume.
	s.mustRun("run", "-a", "hello", "--", "sh", "-c", "echo changed > $MOORAGE_VOLUME_DATA/marker && rm $MOORAGE_VOLUME_DATA/schema.json")
	if volumeFile(s, "hello", "marker") == "" || volumeFile(s, "hello", "schema.json") != "" {
		t.Fatal("the volume did not change")
	}
	out = s.mustRun("backup", "verify", "-a", "hello", id)
	if !strings.Contains(out, "checksum ok") || !strings.Contains(out, "restores and holds data") {
		t.Fatalf("verify:\n%s", out)
	}
	out = s.mustRun("backup", "restore", "-a", "hello", id)
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("restore:\n%s", out)
	}
	if got := volumeFile(s, "hello", "schema.json"); got != schema {
		t.Fatalf("schema.json after restore = %q, want %q", got, schema)
	}
	if volumeFile(s, "hello", "marker") != "" {
		t.Fatal("a file written after the backup survived the restore")
	}
	// The app came back, and the scheduler too (it mounts the volume).
	s.waitBody("/", "release=v1")
	checkConsistent(t, s, "hello")
	// A damaged archive is refused.
	arch := filepath.Join(s.dataDir, "backups", "hello", id+".tar.gz")
	b, _ := os.ReadFile(arch)
	b[len(b)/2] ^= 0xff
	os.WriteFile(arch, b, 0o600)
	if out, errOut, code := s.run("backup", "verify", "-a", "hello", id); code == 0 || !strings.Contains(out+errOut, "corrupt") {
		t.Fatalf("verify of a damaged archive: %d\n%s%s", code, out, errOut)
	}
}

// pgBin finds Debian's PostgreSQL binaries.
func pgBin(t testing.TB) string {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(m) == 0 {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatal("PostgreSQL is not installed (apt-get install postgresql); CI must install it")
		}
		t.Skip("PostgreSQL is not installed (apt-get install postgresql)")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatal("the postgres accessory runs as user postgres, which needs the server to run as root; CI runs the e2e tests as root")
		}
		t.Skip("the postgres accessory runs as user postgres, which needs the server to run as root")
	}
	return filepath.Dir(m[len(m)-1])
}

// pgAccessory is the spec text of a Postgres accessory db on a free port,
// run by the process runtime from Debian's package, and backed up with
// pg_dump. initdb is its first start's initdb command line (INITDB stands
// for the binary); extra, more of its keys. It ends with "volumes:", to
// replace the spec's own.
func pgAccessory(t *testing.T, initdb, extra string) string {
	t.Helper()
	bin := pgBin(t)
	_, port, _ := strings.Cut(freePort(t), ":")
	initdb = strings.ReplaceAll(initdb, "INITDB", bin+"/initdb")
	return fmt.Sprintf(`accessories:
  db:
    command: sh -c 'test -s $MOORAGE_VOLUME_PGDATA/PG_VERSION || %[3]s; exec %[1]s/postgres -D $MOORAGE_VOLUME_PGDATA -p $PORT -k /tmp -c listen_addresses=127.0.0.1'
    user: postgres
    port: %[2]s
    env: {PATH: "%[1]s:/usr/bin:/bin"}
%[4]s    volumes: ["pgdata:/var/lib/postgresql/data"]
    health: {command: "pg_isready -h 127.0.0.1 -p $PORT", start_period: 60s}
    backup: postgres
volumes:`, bin, port, initdb, extra)
}

// A Postgres accessory, run by the process runtime from Debian's package,
// is backed up with pg_dump, its rows changed, restored: the original rows
// are back. verify restores into a scratch database.
func TestPostgresBackupRestore(t *testing.T) {
	parallel(t)
	accessory := pgAccessory(t, "INITDB -D $MOORAGE_VOLUME_PGDATA -U postgres --auth=trust", "")
	s := startServer(t)
	// The accessory runs as postgres: the path to the data dir must be
	// traversable (a real data dir's parent is).
	os.Chmod(filepath.Dir(s.dataDir), 0o711)
	app := helloApp(t, append(fastSpec, "volumes:", accessory)...)
	s.deploy(app, 0)
	psql := func(sql string) string {
		t.Helper()
		out, errOut, code := s.run("run", "-a", "hello", "--", "psql", "-h", "$MOORAGE_ACCESSORY_DB_HOST", "-p", "$MOORAGE_ACCESSORY_DB_PORT",
			"-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql)
		if code != 0 {
			t.Fatalf("psql %q: exit %d\n%s%s", sql, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	psql("CREATE TABLE items (id int primary key, name text); INSERT INTO items VALUES (1, 'anchor'), (2, 'rope'), (3, 'sail')")
	id := postgresBackup(t, s, "hello", "db")
	psql("DELETE FROM items WHERE id = 2; UPDATE items SET name = 'changed' WHERE id = 1; INSERT INTO items VALUES (4, 'new')")
	if got := psql("SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items"); got != "1:changed,3:sail,4:new" {
		t.Fatalf("rows before restore: %s", got)
	}
	out := s.mustRun("backup", "verify", "-a", "hello", id)
	if !strings.Contains(out, "public.items: 3 rows") || !strings.Contains(out, "restores and holds data") {
		t.Fatalf("verify:\n%s", out)
	}
	s.mustRun("backup", "restore", "-a", "hello", id)
	if got := psql("SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items"); got != "1:anchor,2:rope,3:sail" {
		t.Fatalf("rows after restore: %s, want the original three", got)
	}
	// The scratch database of verify is gone.
	if got := psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'moorage_verify_%'"); got != "0" {
		t.Fatalf("%s scratch databases left", got)
	}
	// The accessory was never restarted by any of this.
	st := s.ps("hello")
	for _, in := range st.Instances {
		if in.Kind == "accessory" && in.Restarts != 0 {
			t.Fatalf("accessory restarted: %+v", in)
		}
	}
}

// A scheduled backup into a directory that cannot be written fails loudly:
// in `moorage ps`, in the backup list, in the events and in the server's
// log; a manual one exits non-zero. The directory is a path under a
// regular file: it cannot be created, by root either (root ignores
// permission bits, and a read-only mount needs privileges), so the test
// never has to skip.
func TestScheduledBackupFailureIsLoud(t *testing.T) {
	parallel(t)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unwritable := filepath.Join(file, "backups")

	s := startServer(t)
	app := helloApp(t, append(fastSpec, "volumes:", fmt.Sprintf("backups: {schedule: \"* * * * *\", keep: 2, to: %s}\nvolumes:", unwritable))...)
	s.deploy(app, 0)
	before := s.ps("hello")

	out, errOut, code := s.run("backup", "create", "-a", "hello", "--to", unwritable)
	if code == 0 || !strings.Contains(out+errOut, "not a directory") {
		t.Fatalf("a manual backup into an unwritable directory: exit %d\n%s%s", code, out, errOut)
	}
	// The schedule fires within a minute.
	var ps string
	waitFor(t, 90*time.Second, "the scheduled backup to fail", func() error {
		ps = s.mustRun("ps", "-a", "hello")
		if !regexp.MustCompile(`volume\s+data\s+FAILED .*\(schedule\): .*not a directory`).MatchString(ps) {
			return fmt.Errorf("ps:\n%s", ps)
		}
		return nil
	})
	var st struct {
		Events []struct {
			Kind, Message string
		} `json:"events"`
	}
	json.Unmarshal([]byte(s.mustRun("ps", "-a", "hello", "--json")), &st)
	found := false
	for _, e := range st.Events {
		if e.Kind == "backup" && strings.Contains(e.Message, "schedule backup of volume data FAILED") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no failure event: %+v", st.Events)
	}
	if list := s.mustRun("backup", "list", "-a", "hello"); !strings.Contains(list, "FAILED") || !strings.Contains(list, "schedule") {
		t.Fatalf("backup list:\n%s", list)
	}
	if !regexp.MustCompile(`level=ERROR msg="backup: schedule backup of volume data FAILED`).MatchString(s.logs()) {
		t.Fatalf("no error line in the server log:\n%s", tail(s.logs(), 40))
	}
	// Failing early, it paused nothing.
	assertSameInstances(t, before, s.ps("hello"))
}

// psPaused returns the instances `moorage ps --json` reports paused.
func psPaused(t *testing.T, s *server, app string) []string {
	t.Helper()
	var st struct {
		Instances []struct {
			ID     string `json:"id"`
			Paused bool   `json:"paused"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("ps", "-a", app, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range st.Instances {
		if in.Paused {
			out = append(out, in.ID)
		}
	}
	return out
}

// frozen returns the instances of before that are frozen now, seen from
// outside moorage: a process stopped by SIGSTOP (state T), a paused
// container.
func frozen(t *testing.T, s *server, before psStatus) []string {
	t.Helper()
	if s.runtime == "docker" {
		out, err := docker("ps", "--filter", "label=moorage.prefix="+s.prefix, "--filter", "status=paused", "--format", "{{.Names}}")
		if err != nil {
			t.Fatalf("docker ps: %v %s", err, out)
		}
		return strings.Fields(out)
	}
	var out []string
	for _, in := range before.Instances {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", in.PID))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "T" {
			out = append(out, in.ID)
		}
	}
	return out
}

// The server killed (SIGKILL) while a volume backup has the volume's
// writers paused leaves them frozen: at its next start it resumes them,
// without restarting them, and the app answers again; the interrupted
// backup is recorded failed, and the resume is an event.
func TestSIGKILLDuringVolumeBackup(t *testing.T) { runtimes(t, testSIGKILLDuringVolumeBackup) }

func testSIGKILLDuringVolumeBackup(t *testing.T, rt string) {
	s := startServerRT(t, rt, "MOORAGE_FAILPOINTS=backup:paused")
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	before := s.ps("hello")

	out, errOut, code := s.run("backup", "create", "-a", "hello", "--volume", "data")
	if code == 0 {
		t.Fatalf("backup survived the failpoint:\n%s", out)
	}
	s.waitExit(60 * time.Second)
	if !strings.Contains(s.logs(), "failpoint reached") {
		t.Fatalf("server died without reaching the failpoint: %s%s\n%s", out, errOut, tail(s.logs(), 40))
	}
	if f := frozen(t, s, before); len(f) == 0 {
		t.Fatalf("no instance is frozen after the server died during a backup")
	}

	s.start()
	s.waitBody("/", "release=v1")
	if f := frozen(t, s, before); len(f) != 0 {
		t.Fatalf("still frozen after the restart: %v", f)
	}
	if p := psPaused(t, s, "hello"); len(p) != 0 {
		t.Fatalf("ps reports paused instances: %v", p)
	}
	assertSameInstances(t, before, s.ps("hello"))
	ps := s.mustRun("ps", "-a", "hello")
	if !strings.Contains(ps, "paused by a backup the server's restart interrupted") ||
		!regexp.MustCompile(`volume\s+data\s+FAILED .*\(manual\): interrupted by a server restart`).MatchString(ps) {
		t.Fatalf("ps after the restart:\n%s", ps)
	}
	// Nothing is left of the interrupted archive, and a backup works again.
	if m, _ := filepath.Glob(filepath.Join(s.dataDir, "backups", "hello", "*")); len(m) != 0 {
		t.Fatalf("left in the backup directory: %v", m)
	}
	s.mustRun("backup", "create", "-a", "hello", "--volume", "data")
	if f := frozen(t, s, before); len(f) != 0 {
		t.Fatalf("frozen after a backup: %v", f)
	}
	checkConsistent(t, s, "hello")
}

// The server killed in the middle of a volume restore, after the volume's
// content was moved out and before the backup's was moved in (the volume
// is empty then): at its next start the volume is put back as it was
// before the restore, the app serves, and the restore can be run again.
func TestSIGKILLDuringVolumeRestore(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	schema := volumeFile(s, "hello", "schema.json")
	s.mustRun("backup", "create", "-a", "hello", "--volume", "data")
	id := backupIDs(t, s, "hello")[0]
	s.mustRun("run", "-a", "hello", "--", "sh", "-c", "echo changed > $MOORAGE_VOLUME_DATA/marker && rm $MOORAGE_VOLUME_DATA/schema.json")

	s.stop()
	s.start("MOORAGE_FAILPOINTS=restore:swap")
	out, errOut, code := s.run("backup", "restore", "-a", "hello", id)
	if code == 0 {
		t.Fatalf("restore survived the failpoint:\n%s", out)
	}
	s.waitExit(60 * time.Second)
	if !strings.Contains(s.logs(), "failpoint reached") {
		t.Fatalf("server died without reaching the failpoint: %s%s\n%s", out, errOut, tail(s.logs(), 40))
	}
	if ents, err := os.ReadDir(s.volumePath("hello", "data")); err != nil || len(ents) != 0 {
		t.Fatalf("the crash point is not mid-swap: the volume holds %d entries (%v)", len(ents), err)
	}

	s.start()
	s.waitBody("/", "release=v1")
	if volumeFile(s, "hello", "marker") != "changed\n" || volumeFile(s, "hello", "schema.json") != "" {
		t.Fatalf("the volume is not as it was before the restore: %v", dirNames(s.volumePath("hello", "data")))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(s.volumePath("hello", "data")), ".data-*")); len(left) != 0 {
		t.Fatalf("scratch directories left: %v", left)
	}
	if ps := s.mustRun("ps", "-a", "hello"); !strings.Contains(ps, "the volume was put back as it was") {
		t.Fatalf("ps after the restart:\n%s", ps)
	}
	checkConsistent(t, s, "hello")

	s.mustRun("backup", "restore", "-a", "hello", id)
	if got := volumeFile(s, "hello", "schema.json"); got != schema || volumeFile(s, "hello", "marker") != "" {
		t.Fatalf("restore after recovery: schema %q, entries %v", got, dirNames(s.volumePath("hello", "data")))
	}
	s.waitBody("/", "release=v1")
	checkConsistent(t, s, "hello")
}

func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// An archive copied to another server (whose store never heard of it) is
// restored with --file: its checksum is checked against its manifest, it
// is listed, and the volume comes back. A damaged copy is refused.
func TestRestoreFromFile(t *testing.T) {
	parallel(t)
	a := startServer(t)
	app := a.hello(t, fastSpec...)
	a.deploy(app, 0)
	schema := volumeFile(a, "hello", "schema.json")
	a.mustRun("backup", "create", "-a", "hello", "--volume", "data")
	ids := scanLines(a.mustRun("backup", "list", "-a", "hello", "-q"))
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "hello-volume-data-") {
		t.Fatalf("backup list -q: %v", ids)
	}
	// Carry the archive and its manifest elsewhere.
	carried := t.TempDir()
	for _, ext := range []string{".tar.gz", ".json"} {
		b, err := os.ReadFile(filepath.Join(a.dataDir, "backups", "hello", ids[0]+ext))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(carried, ids[0]+ext), b, 0o600)
	}
	archive := filepath.Join(carried, ids[0]+".tar.gz")

	b := startServer(t)
	b.deploy(app, 0)
	b.mustRun("run", "-a", "hello", "--", "sh", "-c", "echo other > $MOORAGE_VOLUME_DATA/marker && rm $MOORAGE_VOLUME_DATA/schema.json")
	if out, errOut, code := b.run("backup", "restore", "-a", "hello", ids[0]); code == 0 || !strings.Contains(out+errOut, "no backup") {
		t.Fatalf("restore of an ID this server does not know: exit %d\n%s%s", code, out, errOut)
	}
	out := b.mustRun("backup", "restore", "-a", "hello", "--file", archive)
	if !strings.Contains(out, "checksum ok") || !strings.Contains(out, "succeeded") {
		t.Fatalf("restore --file:\n%s", out)
	}
	if got := volumeFile(b, "hello", "schema.json"); got != schema || volumeFile(b, "hello", "marker") != "" {
		t.Fatalf("after restore --file: schema %q, entries %v", got, dirNames(b.volumePath("hello", "data")))
	}
	if list := b.mustRun("backup", "list", "-a", "hello"); !strings.Contains(list, ids[0]) || !strings.Contains(list, "import") {
		t.Fatalf("backup list after the import:\n%s", list)
	}
	b.waitBody("/", "release=v1")

	// A damaged copy is refused, though the store knows its ID.
	bad := filepath.Join(t.TempDir(), ids[0]+".tar.gz")
	raw, _ := os.ReadFile(archive)
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(bad, raw, 0o600)
	man, _ := os.ReadFile(filepath.Join(carried, ids[0]+".json"))
	os.WriteFile(strings.TrimSuffix(bad, ".tar.gz")+".json", man, 0o600)
	if out, errOut, code := b.run("backup", "restore", "-a", "hello", "--file", bad); code == 0 || !strings.Contains(out+errOut, "corrupt") {
		t.Fatalf("restore --file of a damaged archive: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := b.run("backup", "restore", "-a", "hello", "--file", "relative.tar.gz"); code == 0 || !strings.Contains(out+errOut, "absolute path") {
		t.Fatalf("restore --file of a relative path: exit %d\n%s%s", code, out, errOut)
	}
}

// postgresBackup backs up accessory acc of app (backup: postgres) and
// returns the backup's ID.
func postgresBackup(t *testing.T, s *server, app, acc string) string {
	t.Helper()
	out := s.mustRun("backup", "create", "-a", app, "--accessory", acc)
	if !strings.Contains(out, "dumped database postgres") {
		t.Fatalf("backup create:\n%s", out)
	}
	for _, x := range backupIDs(t, s, app) {
		if strings.HasPrefix(x, app+"-postgres-"+acc+"-") {
			return x
		}
	}
	t.Fatalf("no postgres backup listed:\n%s", s.mustRun("backup", "list", "-a", app))
	return ""
}
