package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/crypto/bcrypt"

	"github.com/moorage/moorage/internal/testutil/swarmtest"
)

// With a registry that asks for a login (docker-registry with htpasswd
// auth), a deploy without one fails before anything changes and says
// what to run; after `moorage registry login` with the password on
// standard input, the manager pushes with it and the workers pull with
// it; a logout makes the next deploy fail before anything changes again.
// The password, and the encoded auth Swarm is given, appear nowhere
// moorage prints, logs or records.
func swarmRegistryLogin(t *testing.T) {
	c := swarmtest.Start(t, swarmtest.Options{HeartbeatPeriod: time.Second, InsecureRegistries: []string{"10.231.0.0/16"}})
	const user = "deployer"
	raw := make([]byte, 12)
	rand.Read(raw)
	password := "pw-" + hex.EncodeToString(raw)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := startRegistryConf(t, c.HostIP, fmt.Sprintf("auth: {htpasswd: {realm: moorage-test, path: %q}}\n", htpasswd))
	s := startServerOn(t, "swarm", c, []string{"--swarm-registry", reg + "/team"})
	// What the nodes are given: base64url JSON of the auth config.
	encoded := base64.URLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"username":%q,"password":%q,"serveraddress":%q}`, user, password, reg)))
	secrets := []string{password, encoded, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	var printed []string // everything the CLI printed
	run := func(stdin string, args ...string) (string, int) {
		out, errOut, code := s.runStdin(stdin, args...)
		out += errOut
		printed = append(printed, out)
		return out, code
	}
	appServices := func() []string {
		res, err := c.Client().ServiceList(context.Background(), client.ServiceListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, svc := range res.Items {
			if svc.Spec.Labels["moorage.app"] == "hello" && svc.Spec.Labels["moorage.prefix"] == s.prefix {
				out = append(out, svc.Spec.Name)
			}
		}
		return out
	}
	app := s.hello(t, fastSpec...)

	// 1. No login: the push is refused; nothing runs on the swarm.
	setMessage(t, app, "one")
	out, code := run("", "deploy", app, "--runtime", "swarm")
	if code == 0 {
		t.Fatalf("a deploy without a login succeeded:\n%s", out)
	}
	if want := "moorage registry login " + reg; !strings.Contains(out, want) {
		t.Fatalf("the failed deploy does not say to run %q:\n%s", want, out)
	}
	if svcs := appServices(); len(svcs) > 0 {
		t.Fatalf("a deploy refused by the registry left services: %v", svcs)
	}
	t.Logf("without a login:\n%s", tail(out, 3))

	// 2. A wrong password: refused too, naming the user.
	if out, code := run("not-"+password+"\n", "registry", "login", reg, "-u", user, "--password-stdin"); code != 0 {
		t.Fatalf("registry login: exit %d\n%s", code, out)
	}
	out, code = run("", "deploy", app, "--runtime", "swarm")
	if code == 0 || !strings.Contains(out, "with the login of "+user) || !strings.Contains(out, "moorage registry login "+reg) {
		t.Fatalf("a deploy with a wrong password: exit %d, want a failure naming the user and what to run:\n%s", code, out)
	}
	t.Logf("with a wrong password:\n%s", tail(out, 3))
	if svcs := appServices(); len(svcs) > 0 {
		t.Fatalf("a deploy refused by the registry left services: %v", svcs)
	}

	// 3. The right one, on standard input, for the server's registry
	// (HOST left out).
	out, code = run(password+"\n", "registry", "login", "-u", user, "--password-stdin")
	if code != 0 || !strings.Contains(out, "logged in to "+reg+" as "+user) {
		t.Fatalf("registry login: exit %d\n%s", code, out)
	}
	ls, _ := run("", "registry", "ls")
	if !strings.Contains(ls, reg) || !strings.Contains(ls, user) || !strings.Contains(ls, "--swarm-registry") {
		t.Fatalf("registry ls does not show the login:\n%s", ls)
	}
	lsJSON, _ := run("", "registry", "ls", "--json")
	var logins struct {
		Registry string `json:"registry"`
		Logins   []struct {
			Host, Username string
			Used           bool
		} `json:"logins"`
	}
	if err := json.Unmarshal([]byte(lsJSON), &logins); err != nil || len(logins.Logins) != 1 || logins.Logins[0].Host != reg || !logins.Logins[0].Used {
		t.Fatalf("registry ls --json: %v\n%s", err, lsJSON)
	}

	begin := time.Now()
	out, code = run("", "deploy", app, "--runtime", "swarm")
	if code != 0 || !strings.Contains(out, "pushed image") || !strings.Contains(out, reg+"/team/"+s.prefix+"-hello@sha256:") {
		t.Fatalf("deploy after the login: exit %d\n%s", code, out)
	}
	t.Logf("first deploy with the login: %s", time.Since(begin).Round(time.Millisecond))
	s.waitBody("/", "message=one")
	first := serviceImages(t, c, "v1")
	for svc, img := range first {
		if !strings.HasPrefix(img, reg+"/team/"+s.prefix+"-hello@sha256:") {
			t.Fatalf("service %s runs %q, not the release's digest in the registry", svc, img)
		}
	}
	// The workers pulled the digest, with the login (the registry
	// refuses anonymous pulls too).
	onWorkers := 0
	for _, in := range s.ps("hello").Instances {
		n := c.Node(in.Node)
		if n == nil || n == c.Manager() {
			continue
		}
		onWorkers++
		if !hasDigest(t, n, reg+"/team/"+s.prefix+"-hello@") {
			t.Fatalf("%s runs %s but has no image from the registry", n.Name, in.ID)
		}
	}
	if onWorkers == 0 {
		t.Fatal("no instance runs on a worker: nothing shows that the workers pulled from the registry")
	}
	// Where Swarm keeps the login: the service and task as the API shows
	// them, and the nodes' own files.
	reportSwarmAuth(t, c, s.prefix, secrets)

	setMessage(t, app, "two")
	if out, code := run("", "deploy", app, "--runtime", "swarm"); code != 0 {
		t.Fatalf("second deploy: exit %d\n%s", code, out)
	}
	s.waitBody("/", "message=two")
	if out, code := run("", "rollback", "-a", "hello"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	s.waitBody("/", "message=one")
	active := s.ps("hello").Active
	for svc, img := range serviceImages(t, c, active) {
		if want := first[svc]; want != "" && img != want {
			t.Fatalf("after the rollback %s runs %s, want v1's %s", svc, img, want)
		}
	}

	// 4. Logged out: the next deploy fails before anything changes.
	if out, code := run("", "registry", "logout"); code != 0 {
		t.Fatalf("registry logout: exit %d\n%s", code, out)
	}
	before := appServices()
	setMessage(t, app, "three")
	out, code = run("", "deploy", app, "--runtime", "swarm")
	if code == 0 || !strings.Contains(out, "moorage registry login "+reg) {
		t.Fatalf("a deploy after the logout: exit %d, want a failure saying what to run:\n%s", code, out)
	}
	s.waitBody("/", "message=one")
	if got := s.ps("hello").Active; got != active {
		t.Fatalf("active release %s after a refused deploy, want %s", got, active)
	}
	if after := appServices(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("a refused deploy changed the services:\nbefore %v\nafter  %v", before, after)
	}
	checkMigrations(t, s, "hello", 2)

	// The password and the encoded auth appear nowhere moorage wrote.
	deploysJSON, _ := run("", "deploys", "-a", "hello", "--json")
	var ds []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(deploysJSON), &ds); err != nil || len(ds) < 3 {
		t.Fatalf("deploys --json: %v (%d records)\n%s", err, len(ds), deploysJSON)
	}
	for _, d := range ds {
		run("", "deploys", fmt.Sprint(d.ID), "-a", "hello", "--json")
		run("", "deploys", fmt.Sprint(d.ID), "-a", "hello")
	}
	run("", "ps", "-a", "hello", "--json")
	run("", "registry", "ls", "--json")
	where := map[string]string{"the CLI's output": strings.Join(printed, "\n"), "the server's log": s.logs()}
	for _, f := range []string{"moorage.db", "moorage.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(s.dataDir, f))
		where[f] = string(b)
	}
	filepath.WalkDir(filepath.Join(s.dataDir, "logs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			where[p] = string(b)
		}
		return nil
	})
	for name, text := range where {
		for i, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Errorf("%s contains the login (secret form %d)", name, i)
			}
		}
	}
	if !strings.Contains(where["the server's log"], "registry login stored") {
		t.Errorf("the server's log does not record the login (host and user)")
	}
}

// reportSwarmAuth logs where the swarm shows or keeps the login: in the
// services and tasks as the manager's API returns them (`docker service
// inspect`, `docker inspect TASK`), and in the files under each node's
// data root. It fails the test if the API shows it.
func reportSwarmAuth(t *testing.T, c *swarmtest.Cluster, prefix string, secrets []string) {
	t.Helper()
	ctx := context.Background()
	res, err := c.Client().ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range res.Items {
		if svc.Spec.Labels["moorage.prefix"] != prefix {
			continue
		}
		in, err := c.Client().ServiceInspect(ctx, svc.ID, client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, sec := range secrets {
			if bytes.Contains(in.Raw, []byte(sec)) {
				t.Errorf("docker service inspect %s shows the login (secret form %d)", svc.Spec.Name, i)
			}
		}
	}
	tasks, err := c.Client().TaskList(ctx, client.TaskListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tasks.Items)
	for i, sec := range secrets {
		if bytes.Contains(b, []byte(sec)) {
			t.Errorf("the task list (docker inspect TASK) shows the login (secret form %d)", i)
		}
	}
	t.Logf("docker service inspect and the task list show no password and no encoded auth")
	for _, n := range c.Nodes {
		var found []string
		filepath.WalkDir(n.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			if fi, err := d.Info(); err != nil || fi.Size() > 64<<20 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			for i, sec := range secrets {
				if bytes.Contains(b, []byte(sec)) {
					rel, _ := filepath.Rel(n.Dir, p)
					fi, _ := d.Info()
					found = append(found, fmt.Sprintf("%s (form %d, mode %v)", rel, i, fi.Mode().Perm()))
				}
			}
			return nil
		})
		mode := "?"
		if fi, err := os.Stat(filepath.Join(n.Dir, "data", "swarm")); err == nil {
			mode = fi.Mode().Perm().String()
		}
		t.Logf("%s: files under its data root holding the login (form 0 = password, 1 = encoded auth, 2 = basic auth): %v; data/swarm is %s", n.Name, found, mode)
	}
}
