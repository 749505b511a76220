package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configValues returns `moorage config --json` as KEY → value ("(secret)"
// for secrets).
func configValues(t *testing.T, s *server, app string) map[string]string {
	t.Helper()
	var vars []struct {
		Key    string `json:"key"`
		Value  string `json:"value"`
		Secret bool   `json:"secret"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("config", "-a", app, "--json")), &vars); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, v := range vars {
		out[v.Key] = v.Value
		if v.Secret {
			out[v.Key] = "(secret)"
		}
	}
	return out
}

// A config change takes effect only when its release becomes active: one
// whose release fails its health check leaves `moorage config` and the
// next deploy on the old values, also when the server is killed during its
// rollout (recovery records the change only if it had cut over).
func TestConfigChangeOnlyWhenActive(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, append(fastSpec, "health: {path: /healthz, interval: 1s}", "health: {path: /healthz, interval: 1s, start_period: 3s}")...)
	s.deploy(app, 0)
	s.mustRun("config", "set", "-a", "hello", "PLAIN=one")
	s.waitBody("/env/PLAIN", "one")

	out, errOut, code := s.run("config", "set", "-a", "hello", "HELLO_UNHEALTHY=1", "PLAIN=two")
	if code == 0 || !strings.Contains(out+errOut, "did not become ready") {
		t.Fatalf("an unhealthy config change did not fail: exit %d\n%s%s", code, out, errOut)
	}
	if cfg := configValues(t, s, "hello"); cfg["PLAIN"] != "one" || cfg["HELLO_UNHEALTHY"] != "" {
		t.Fatalf("config after the failed change: %v", cfg)
	}
	s.waitBody("/env/PLAIN", "one")
	if st := s.ps("hello"); st.Active != "v2" {
		t.Fatalf("active %s, want v2", st.Active)
	}
	// The next deploy ships the old values (HELLO_UNHEALTHY=1 would fail it).
	setMessage(t, app, "after the failed change")
	s.deploy(app, 0)
	s.waitBody("/", "after the failed change")
	s.waitBody("/env/PLAIN", "one")

	// Killed before the cutover: undone at restart, the config unchanged.
	// Killed after it: finished at restart, the config changed.
	outer := s.t
	for _, tc := range []struct {
		failpoint, value, want string
	}{
		{"before:cutover", "three", "one"},
		{"after:monitor", "four", "four"},
	} {
		t.Run(strings.ReplaceAll(tc.failpoint, ":", "_"), func(t *testing.T) {
			s.t = t
			defer func() { s.t = outer }()
			s.stop()
			s.start("MOORAGE_FAILPOINTS=" + tc.failpoint)
			if out, errOut, code := s.run("config", "set", "-a", "hello", "PLAIN="+tc.value); code == 0 {
				t.Fatalf("config set survived failpoint %s:\n%s%s", tc.failpoint, out, errOut)
			}
			s.waitExit(30 * time.Second)
			s.start()
			s.waitBody("/env/PLAIN", tc.want)
			if cfg := configValues(t, s, "hello"); cfg["PLAIN"] != tc.want {
				t.Fatalf("config after restart: %v, want PLAIN=%s", cfg, tc.want)
			}
			checkConsistent(t, s, "hello")
		})
		if t.Failed() {
			return
		}
	}
	// A rollback brings its release's config back for later deploys too.
	rels := s.mustRun("releases", "-a", "hello")
	if !strings.Contains(rels, "config set PLAIN") {
		t.Fatalf("releases:\n%s", rels)
	}
	s.mustRun("rollback", "-a", "hello")
	s.waitBody("/env/PLAIN", "one")
	if cfg := configValues(t, s, "hello"); cfg["PLAIN"] != "one" {
		t.Fatalf("config after rollback: %v", cfg)
	}
}

// A secret never silently becomes a plain value: not by `config set`
// without --secret, and a spec's secrets: are not satisfied by plain
// values.
func TestSecretsStaySecret(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	s.mustRun("config", "set", "--secret", "-a", "hello", "TOKEN=first-secret-value")
	s.mustRun("config", "set", "-a", "hello", "NEEDED=plain-value")
	s.deploy(app, 0)
	s.waitBody("/env/TOKEN", "first-secret-value")

	out, errOut, code := s.run("config", "set", "-a", "hello", "TOKEN=now-plain")
	if msg := out + errOut; code == 0 || !strings.Contains(msg, "TOKEN is a secret") || !strings.Contains(msg, "config set --secret TOKEN") || !strings.Contains(msg, "config unset TOKEN") {
		t.Fatalf("a plain value over a secret was not refused: exit %d\n%s%s", code, out, errOut)
	}
	if cfg := configValues(t, s, "hello"); cfg["TOKEN"] != "(secret)" {
		t.Fatalf("config: %v", cfg)
	}

	// A spec that declares NEEDED a secret is not deployed while it is
	// plain; making it a secret fixes that.
	editSpec(t, app, "release:", "secrets: [NEEDED]\nrelease:")
	out = s.deploy(app, 1)
	if !strings.Contains(out, "set as plain values") || !strings.Contains(out, "config set --secret NEEDED") || strings.Contains(out, "plain-value") {
		t.Fatalf("deploy with a plain value for a declared secret:\n%s", out)
	}
	if _, errOut, code := s.runStdin("needed-secret-value\n", "config", "set", "--secret", "--no-deploy", "-a", "hello", "NEEDED"); code != 0 {
		t.Fatalf("config set --secret NEEDED: %s", errOut)
	}
	s.deploy(app, 0)
	s.waitBody("/env/NEEDED", "needed-secret-value")
	out, errOut, code = s.run("config", "set", "-a", "hello", "NEEDED=plain-again")
	if code == 0 || !strings.Contains(out+errOut, "config set --secret NEEDED") {
		t.Fatalf("a plain value for a declared secret was not refused: exit %d\n%s%s", code, out, errOut)
	}
	// Unset first, then plain: allowed (the spec does not declare TOKEN).
	s.mustRun("config", "unset", "-a", "hello", "--no-deploy", "TOKEN")
	s.mustRun("config", "set", "-a", "hello", "TOKEN=now-plain")
	s.waitBody("/env/TOKEN", "now-plain")

	// Errors never echo a value.
	for _, args := range [][]string{
		{"config", "set", "--secret", "-a", "hello", "=leaky-value-1"},
		{"config", "set", "-a", "hello", "leaky-value-2"},
		{"config", "set", "--secret", "-a", "hello", "1leaky=leaky-value-3"},
	} {
		out, errOut, code := s.run(args...)
		if code == 0 || strings.Contains(out+errOut, "leaky") {
			t.Errorf("moorage %s: exit %d, output shows the value:\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// An accessory gets the secrets it declares, and no others.
func TestAccessorySecrets(t *testing.T) {
	parallel(t)
	s := startServer(t)
	port := strings.Split(freePort(t), ":")[1]
	app := s.hello(t, append(fastSpec, "volumes:", `accessories:
  vault:
    command: sh -c 'printf %s "$$VAULT_TOKEN" > "$$MOORAGE_VOLUME_VAULTDATA/token"; printf %s "$$APP_TOKEN" > "$$MOORAGE_VOLUME_VAULTDATA/other"; exec sleep 3600'
    port: `+port+`
    secrets: [VAULT_TOKEN]
    volumes: ["vaultdata:/data"]
    health: {command: "test -e $MOORAGE_VOLUME_VAULTDATA/other", interval: 1s}
volumes:`)...)
	vault := "vault-secret-" + strings.Repeat("x", 8)
	appToken := "app-secret-" + strings.Repeat("y", 8)
	s.mustRun("config", "set", "--secret", "-a", "hello", "APP_TOKEN="+appToken)
	out := s.deploy(app, 1)
	if !strings.Contains(out, "declares secrets that are not set: VAULT_TOKEN") {
		t.Fatalf("deploy without the accessory's secret:\n%s", out)
	}
	s.mustRun("config", "set", "--secret", "-a", "hello", "VAULT_TOKEN="+vault)
	s.deploy(app, 0)
	dir := s.volumePath("hello", "vaultdata")
	if b, _ := os.ReadFile(filepath.Join(dir, "token")); string(b) != vault {
		t.Fatalf("the accessory got VAULT_TOKEN=%q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "other")); len(b) != 0 {
		t.Fatalf("the accessory got a secret it does not declare")
	}
	if hits := grepDir(t, s.dataDir, []byte(vault)); len(hits) != 1 || !strings.HasSuffix(hits[0], "/token") {
		t.Fatalf("the secret is in the data dir beyond what the accessory wrote: %v", hits)
	}
}

// A Postgres accessory gets its password as a secret (never written in
// moorage.yaml), and backups authenticate with it.
func TestPostgresPasswordSecret(t *testing.T) {
	parallel(t)
	accessory := pgAccessory(t, `printf %s "$$POSTGRES_PASSWORD" | INITDB -D $MOORAGE_VOLUME_PGDATA -U postgres --auth=scram-sha-256 --pwfile=/dev/stdin`,
		"    secrets: [POSTGRES_PASSWORD]\n")
	s := startServer(t)
	os.Chmod(filepath.Dir(s.dataDir), 0o711) // the accessory runs as postgres
	app := helloApp(t, append(fastSpec, "volumes:", accessory)...)
	password := "pg-pass-" + fmt.Sprint(time.Now().UnixNano())
	if _, errOut, code := s.runStdin(password+"\n", "config", "set", "--secret", "-a", "hello", "POSTGRES_PASSWORD"); code != 0 {
		t.Fatalf("config set --secret: %s", errOut)
	}
	s.deploy(app, 0)
	psql := func(sql string) (string, int) {
		t.Helper()
		out, errOut, code := s.run("run", "-a", "hello", "--", "sh", "-c",
			`PGPASSWORD="$$POSTGRES_PASSWORD" exec psql -h "$$MOORAGE_ACCESSORY_DB_HOST" -p "$$MOORAGE_ACCESSORY_DB_PORT" -U postgres -v ON_ERROR_STOP=1 -tA -c "$$0"`, sql)
		return strings.TrimSpace(out + errOut), code
	}
	if out, code := psql("CREATE TABLE items (id int primary key); INSERT INTO items VALUES (1), (2)"); code != 0 {
		t.Fatalf("psql with the password: exit %d\n%s", code, out)
	}
	// The password is required: without it the server refuses.
	if out, errOut, code := s.run("run", "-a", "hello", "--", "psql", "-h", "$MOORAGE_ACCESSORY_DB_HOST", "-p", "$MOORAGE_ACCESSORY_DB_PORT", "-U", "postgres", "-w", "-c", "select 1"); code == 0 || !strings.Contains(out+errOut, "password") {
		t.Fatalf("psql without a password: exit %d, want a refusal for want of a password:\n%s%s", code, out, errOut)
	}
	id := postgresBackup(t, s, "hello", "db")
	if out := s.mustRun("backup", "verify", "-a", "hello", id); !strings.Contains(out, "public.items: 2 rows") {
		t.Fatalf("verify:\n%s", out)
	}
	if hits := grepDir(t, s.dataDir, []byte(password)); len(hits) > 0 {
		t.Fatalf("the password is in the data dir: %v", hits)
	}
	if strings.Contains(s.mustRun("releases", "-a", "hello", "--json"), password) {
		t.Fatal("the password is in the release record")
	}
}
