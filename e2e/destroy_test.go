package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/client"
)

// withStore adds an accessory "store" with a volume storedata to the hello
// example, on s's runtime: busybox httpd on process, the test's FROM
// scratch store image on docker.
func withStore(t *testing.T, s *server) []string {
	t.Helper()
	acc := ""
	if s.runtime == "docker" {
		acc = "accessories:\n  store:\n    image: " + buildStoreImage(t, s) + "\n    port: 8080\n    volumes: [\"storedata:/store-data\"]\nvolumes:"
	} else {
		_, port, _ := strings.Cut(freePort(t), ":")
		acc = "accessories:\n  store:\n    command: busybox httpd -f -p 127.0.0.1:$PORT -h .\n    port: " + port + "\n    volumes: [\"storedata:/store-data\"]\nvolumes:"
	}
	return append(append([]string{}, fastSpec...), "volumes:", acc)
}

// audit returns the server's audit, newest first, one entry a line.
func (s *server) audit(t *testing.T) string {
	t.Helper()
	c, err := client.New("unix://" + socketOf(s.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Audit(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s | %s | %s | %s\n", e.User, e.Action, e.Target, e.Outcome)
	}
	return b.String()
}

// waitAudit waits until the audit has an entry containing want, by a user
// the kernel named (an operation is audited once it has ended, just
// after the CLI saw its end), and returns the audit.
func (s *server) waitAudit(t *testing.T, want string) string {
	t.Helper()
	var a string
	waitFor(t, 10*time.Second, "the audit to record "+want, func() error {
		a = s.audit(t)
		for _, l := range strings.Split(a, "\n") {
			if strings.Contains(l, want) && strings.Contains(l, "(uid ") {
				return nil
			}
		}
		return fmt.Errorf("audit:\n%s", a)
	})
	return a
}

// leftovers lists what of app still exists on s's runtime: processes
// running in the server's data dir (process), containers and images
// (docker), and release directories.
func (s *server) leftovers(t *testing.T, app string) []string {
	t.Helper()
	var out []string
	if s.runtime == "docker" {
		for _, args := range [][]string{
			{"ps", "-aq", "--filter", "label=moorage.prefix=" + s.prefix, "--filter", "label=moorage.app=" + app},
			{"images", "-q", "--filter", "label=moorage.prefix=" + s.prefix, "--filter", "label=moorage.app=" + app},
		} {
			if ids, _ := docker(args...); ids != "" {
				out = append(out, "docker "+args[0]+": "+strings.Join(strings.Fields(ids), " "))
			}
		}
	} else {
		procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
		for _, p := range procs {
			if cwd, err := os.Readlink(p); err == nil && strings.HasPrefix(cwd, s.dataDir+"/") {
				cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
				out = append(out, fmt.Sprintf("process in %s: %s", cwd, strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dataDir, "releases", app)); len(ents) > 0 {
		out = append(out, fmt.Sprintf("%d release directories", len(ents)))
	}
	return out
}

// `moorage apps destroy` refuses without --yes (saying what it would
// remove) and while a deploy holds the lock; with --yes it removes the
// app's instances, accessory, artifacts, route and records, keeps its
// volumes (saying where), and the audit records who did it. A deploy of
// the same name then starts from v1 and finds the volumes again;
// --volumes deletes them, naming each.
func TestAppsDestroy(t *testing.T) {
	runtimes(t, func(t *testing.T, rt string) {
		s := startServerRT(t, rt)
		_, unknownBody, _ := s.get("/")
		unknownCode, _, _ := s.get("/")
		app := s.hello(t, withStore(t, s)...)
		s.deploy(app, 0)
		s.waitBody("/", "release=v1")
		keep := filepath.Join(s.volumePath("hello", "data"), "kept.txt")
		if err := os.WriteFile(keep, []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}

		// While a deploy holds the lock: refused, as a second deploy is.
		editSpec(t, app, "release:", "env:\n  HELLO_MIGRATE_SLEEP: 4s\nrelease:")
		done := make(chan string, 1)
		go func() {
			out, errOut, code := s.run("deploy", app, "--runtime", rt)
			done <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
		}()
		waitFor(t, 60*time.Second, "the deploy to take the lock", func() error {
			select {
			case out := <-done:
				t.Fatalf("the deploy ended before it was seen holding the lock: %s", out)
			default:
			}
			if !strings.Contains(s.mustRun("ps", "-a", "hello"), "locked:") {
				return fmt.Errorf("not locked yet")
			}
			return nil
		})
		for _, args := range [][]string{
			{"apps", "destroy", "hello", "--yes"},
			{"accessory", "stop", "-a", "hello", "store"},
			{"stop", "hello"},
		} {
			out, errOut, code := s.run(args...)
			if code == 0 || !strings.Contains(errOut, "hello is locked") || !strings.Contains(errOut, "--wait") {
				t.Errorf("%v while a deploy holds the lock: exit %d\n%s%s", args, code, out, errOut)
			}
		}
		if first := <-done; !strings.HasPrefix(first, "exit 0") {
			t.Fatalf("deploy: %s", first)
		}
		s.waitBody("/", "release=v2")

		// Without --yes: what it would remove, and a refusal.
		out, errOut, code := s.run("apps", "destroy", "hello")
		if code == 0 || !strings.Contains(out, "unroute: the proxy stops serving") || !strings.Contains(out, "forget hello") ||
			!strings.Contains(out, "keeps volumes data storedata") || !strings.Contains(errOut, "--yes") {
			t.Fatalf("destroy without --yes: exit %d\n%s%s", code, out, errOut)
		}
		s.waitBody("/", "release=v2")

		start := time.Now()
		out = s.mustRun("apps", "destroy", "hello", "--yes")
		t.Logf("destroy took %s", time.Since(start).Round(time.Millisecond))
		for _, want := range []string{"hello is destroyed", "kept volumes data (" + rt + ": ", "storedata (" + rt + ": ", "--volumes"} {
			if !strings.Contains(out, want) {
				t.Errorf("destroy output lacks %q:\n%s", want, out)
			}
		}
		if apps := s.mustRun("apps"); strings.Contains(apps, "hello") {
			t.Errorf("moorage apps still lists hello:\n%s", apps)
		}
		if code, body, _ := s.get("/"); code != unknownCode || body != unknownBody {
			t.Errorf("GET / after destroy: %d %q, want what an unknown host gets: %d %q", code, body, unknownCode, unknownBody)
		}
		if left := s.leftovers(t, "hello"); len(left) > 0 {
			t.Errorf("left after destroy: %v", left)
		}
		if b, err := os.ReadFile(keep); err != nil || string(b) != "kept" {
			t.Errorf("the data volume was not kept: %q %v", b, err)
		}
		s.waitAudit(t, "| apps destroy | hello | succeeded")
		if _, errOut, code := s.run("apps", "destroy", "hello", "--yes"); code == 0 || !strings.Contains(errOut, "does not exist") {
			t.Errorf("destroying it again: exit %d %s", code, errOut)
		}

		// A fresh deploy of the name starts from scratch, with its volume.
		editSpec(t, app, "env:\n  HELLO_MIGRATE_SLEEP: 4s\n", "")
		s.deploy(app, 0)
		s.waitBody("/", "release=v1")
		if st := s.ps("hello"); st.Active != "v1" {
			t.Errorf("redeploy: active %q, want v1", st.Active)
		}
		if hist := s.mustRun("deploys", "-a", "hello"); strings.Count(hist, "deploy hello") != 1 {
			t.Errorf("the history of the destroyed app came back:\n%s", hist)
		}
		if b, _ := os.ReadFile(keep); string(b) != "kept" {
			t.Errorf("the redeployed app does not find its kept volume")
		}

		// --volumes deletes them, each named.
		dataDir, storeDir := s.volumePath("hello", "data"), s.volumePath("hello", "storedata")
		out = s.mustRun("apps", "destroy", "hello", "--yes", "--volumes")
		for _, want := range []string{"deleted volume data", "deleted volume storedata", "deleted volumes data storedata"} {
			if !strings.Contains(out, want) {
				t.Errorf("destroy --volumes lacks %q:\n%s", want, out)
			}
		}
		for _, d := range []string{dataDir, storeDir} {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("volume %s still exists (%v)", d, err)
			}
		}
		if left := s.leftovers(t, "hello"); len(left) > 0 {
			t.Errorf("left after destroy --volumes: %v", left)
		}
		if rt == "process" {
			acc := filepath.Join(s.dataDir, "accessories", "hello")
			if _, err := os.Stat(acc); !os.IsNotExist(err) || !strings.Contains(out, "deleted "+acc) {
				t.Errorf("the accessories' working directory %s after destroy --volumes: %v\n%s", acc, err, out)
			}
		}
	})
}

// A destroy killed half-way (after its instances stopped) leaves an app
// that the restarted server starts nothing of and that refuses deploys;
// running destroy again finishes the job.
func TestAppsDestroyInterrupted(t *testing.T) {
	runtimes(t, func(t *testing.T, rt string) {
		s := startServerRT(t, rt, "MOORAGE_FAILPOINTS=after:destroy:stop")
		app := s.hello(t, withStore(t, s)...)
		s.deploy(app, 0)
		s.waitBody("/", "release=v1")
		s.run("apps", "destroy", "hello", "--yes")
		s.waitExit(30 * time.Second)
		s.start()
		if st := s.ps("hello"); len(st.Instances) > 1 { // the accessory was not stopped yet
			t.Errorf("after the restart instances of a half-destroyed app run: %+v", st.Instances)
		}
		for _, in := range s.ps("hello").Instances {
			if in.Kind == "service" {
				t.Errorf("recovery started %s of a half-destroyed app", in.ID)
			}
		}
		if ps := s.mustRun("ps", "-a", "hello"); !strings.Contains(ps, "BEING DESTROYED") {
			t.Errorf("ps of a half-destroyed app:\n%s", ps)
		}
		if out := s.deploy(app, 1); !strings.Contains(out, "being destroyed") || !strings.Contains(out, "moorage apps destroy hello --yes") {
			t.Errorf("deploy of a half-destroyed app:\n%s", out)
		}
		s.mustRun("apps", "destroy", "hello", "--yes")
		if apps := s.mustRun("apps"); strings.Contains(apps, "hello") {
			t.Errorf("moorage apps still lists hello:\n%s", apps)
		}
		if left := s.leftovers(t, "hello"); len(left) > 0 {
			t.Errorf("left after the second destroy: %v", left)
		}
	})
}

// An accessory stopped with `moorage accessory stop` stays stopped across
// a deploy (which warns) and a server restart; start runs it again; remove
// is refused while the active release declares it, and removes it (and
// with --volumes its volume) once a deploy dropped it. Each is in the
// audit with who did it.
func TestAccessoryStopStartRemove(t *testing.T) {
	runtimes(t, func(t *testing.T, rt string) {
		s := startServerRT(t, rt)
		app := s.hello(t, withStore(t, s)...)
		s.deploy(app, 0)
		s.waitBody("/", "release=v1")
		store := func() string {
			for _, in := range s.ps("hello").Instances {
				if in.Kind == "accessory" {
					return in.State
				}
			}
			return "none"
		}
		if st := store(); st != "running" {
			t.Fatalf("accessory: %s", st)
		}
		if out := s.mustRun("accessory", "stop", "-a", "hello", "store", "--dry-run"); !strings.Contains(out, "accessory store: stop") || store() != "running" {
			t.Fatalf("dry run of a stop:\n%s", out)
		}
		s.mustRun("accessory", "stop", "-a", "hello", "store")
		if st := store(); st != "none" {
			t.Fatalf("after stop the accessory is %s", st)
		}
		if _, errOut, code := s.run("accessory", "stop", "-a", "hello", "store"); code == 0 || !strings.Contains(errOut, "already stopped") {
			t.Errorf("a second stop: exit %d %s", code, errOut)
		}
		setMessage(t, app, "second")
		out := s.deploy(app, 0, "-v")
		if !strings.Contains(out, "accessory store: stay stopped") || !strings.Contains(out, "warning: accessory store is stopped") {
			t.Errorf("a deploy with a stopped accessory:\n%s", out)
		}
		s.waitBody("/", "second")
		s.stop()
		s.start()
		s.waitBody("/", "second")
		if st := store(); st != "none" {
			t.Fatalf("after a deploy and a restart the stopped accessory is %s", st)
		}
		if ps := s.mustRun("ps", "-a", "hello"); !strings.Contains(ps, "accessory store: stopped") {
			t.Errorf("ps does not say the accessory is stopped:\n%s", ps)
		}
		if _, errOut, code := s.run("accessory", "remove", "-a", "hello", "store"); code == 0 || !strings.Contains(errOut, "declared by the active release") {
			t.Errorf("remove of a declared accessory: exit %d %s", code, errOut)
		}
		s.mustRun("accessory", "start", "-a", "hello", "store")
		if st := store(); st != "running" {
			t.Fatalf("after start the accessory is %s", st)
		}
		storeDir := s.volumePath("hello", "storedata")

		// Dropped from the spec: deploys leave it alone; remove removes it.
		editSpec(t, app, "volumes: [\"storedata:/store-data\"]", "volumes: [\"storedata:/store-data\"]\n    # dropped below")
		spec, _ := os.ReadFile(filepath.Join(app, "moorage.yaml"))
		i, j := strings.Index(string(spec), "accessories:"), strings.Index(string(spec), "# dropped below\n")
		os.WriteFile(filepath.Join(app, "moorage.yaml"), []byte(string(spec[:i])+string(spec[j+len("# dropped below\n"):])), 0o644)
		s.deploy(app, 0)
		if st := store(); st != "running" {
			t.Fatalf("a deploy without the accessory removed it: %s", st)
		}
		out = s.mustRun("accessory", "remove", "-a", "hello", "store", "--volumes")
		if !strings.Contains(out, "removed accessory store") || !strings.Contains(out, "deleted volume storedata") {
			t.Errorf("remove --volumes:\n%s", out)
		}
		if st := store(); st != "none" {
			t.Errorf("after remove the accessory is %s", st)
		}
		if _, err := os.Stat(storeDir); !os.IsNotExist(err) {
			t.Errorf("volume storedata still exists (%v)", err)
		}
		a := s.waitAudit(t, "| accessory remove --volumes | hello store | succeeded")
		for _, want := range []string{"| accessory stop | hello store | succeeded", "| accessory start | hello store | succeeded", "| accessory remove --volumes | hello store | succeeded", "| accessory stop | hello store | failed"} {
			if !strings.Contains(a, want) {
				t.Errorf("the audit lacks %q:\n%s", want, a)
			}
		}
		if !strings.Contains(a, "uid ") {
			t.Errorf("the audit does not say who:\n%s", a)
		}
	})
}
