package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/api"
)

// requireDjango finds Debian's python3 with python3-django; missing, the
// test fails under MOORAGE_REQUIRE_DOCKER=1 (scripts/test-deps installs it)
// and is skipped, saying why, otherwise.
func requireDjango(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import django").Run(); err != nil {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but /usr/bin/python3 cannot import django (%v); install python3-django", err)
		}
		t.Skipf("/usr/bin/python3 cannot import django (%v); install python3-django to run it", err)
	}
}

// copyExample copies examples/NAME into a temporary directory, without
// Python's caches and a local database.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	return copyExampleTree(t, name, func(_, base string) bool {
		return base == "__pycache__" || base == "db.sqlite3"
	})
}

type checkReport struct {
	App     string `json:"app"`
	Results []struct {
		Name, Status, Message, Fix, Output string
	} `json:"results"`
}

func (r checkReport) find(name string) (status, fix, output string) {
	for _, x := range r.Results {
		if x.Name == name {
			return x.Status, x.Fix, x.Output
		}
	}
	return "", "", ""
}

// `moorage check` (the pipeline's preflight) on the Django example: a
// secret not set fails it with the command that sets it; set, the spec's
// checks (manage.py check --deploy, makemigrations --check) pass in a
// build that never starts; a model changed without its migration fails
// with the fix naming the app. Nothing is deployed by any of it.
func TestPipelineCheckDjango(t *testing.T) {
	parallel(t)
	requireDjango(t)
	s := startServer(t)
	dir := copyExample(t, "django")

	// The secret is not set: a failure that says how to set it.
	out, errOut, code := s.run("check", dir)
	if code != 1 || !strings.Contains(out, "FAIL  security.secrets") || !strings.Contains(out, "moorage config set -a django-shop --secret SECRET_KEY=") {
		t.Fatalf("check without SECRET_KEY: exit %d, want 1 naming the fix\n%s%s", code, out, errOut)
	}
	s.mustRun("config", "set", "-a", "django-shop", "--secret", "SECRET_KEY=Zt0m5hQ8yW2vK7pL4nR9cX1bF6gJ3dS0aE5uI8oP2qT7wY4rV9")

	out, errOut, code = s.run("check", dir)
	if code != 0 {
		t.Fatalf("check of the example: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"PASS  checks[0]: `/usr/bin/python3 manage.py check --deploy", "PASS  checks[1]: `/usr/bin/python3 manage.py makemigrations --check --dry-run` passed", "PASS  security.health.web", "plan:\n", "deploy django-shop v1 (active: none)", "  1. build v1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("check output lacks %q:\n%s", want, out)
		}
	}

	// A model field without its migration.
	models := filepath.Join(dir, "notes", "models.py")
	b, err := os.ReadFile(models)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(models, append(b, []byte("    done = models.BooleanField(default=False)\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = s.run("check", "--json", dir)
	if code != 1 {
		t.Fatalf("check with a pending migration: exit %d, want 1\n%s%s", code, out, errOut)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	status, fix, output := rep.find("checks[1]")
	if status != "fail" || !strings.Contains(fix, "manage.py makemigrations notes") || !strings.Contains(output, "Add field done to note") {
		t.Fatalf("pending migration: status %q, fix %q, output:\n%s", status, fix, output)
	}
	if status, _, _ := rep.find("checks[0]"); status != "pass" {
		t.Fatalf("check --deploy: %s, want pass", status)
	}

	// Nothing ran and nothing was recorded.
	if out := strings.TrimSpace(s.mustRun("releases", "-a", "django-shop", "--json")); out != "[]" {
		t.Fatalf("check recorded a release:\n%s", out)
	}
	if entries, _ := filepath.Glob(filepath.Join(s.dataDir, "releases", "django-shop", "*")); len(entries) > 0 {
		t.Fatalf("check left build artifacts: %v", entries)
	}
}

func appendSpec(t *testing.T, dir, text string) {
	t.Helper()
	p := filepath.Join(dir, "moorage.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, []byte(text)...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The pipeline: a commit whose test: passes is built, checked and
// deployed, each stage journaled; one whose test fails stops there with
// the test's output shown, and the active release is unchanged.
func TestPipelineRunTestGate(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	appendSpec(t, app, "test:\n  commands: [sh -c \"echo unit tests ran with MODE=$MODE; test -f message.txt\"]\n  env: {MODE: testing}\n")
	setMessage(t, app, "first")
	out, errOut, code := s.run("pipeline", app)
	if code != 0 {
		t.Fatalf("pipeline: exit %d\n%s%s", code, out, errOut)
	}
	s.waitBody("/", "first")
	var ds []struct {
		ID     int64  `json:"id"`
		Kind   string `json:"kind"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
		t.Fatal(err)
	}
	var pid int64
	for _, d := range ds {
		if d.Kind == "pipeline" {
			pid = d.ID
		}
	}
	if pid == 0 {
		t.Fatalf("no pipeline record in %+v", ds)
	}
	rec := s.mustRun("deploys", "-a", "hello", fmt.Sprint(pid))
	for _, want := range []string{"fetch", "build", "test", "check", "deploy", "notify", "unit tests ran with MODE=testing"} {
		if !strings.Contains(rec, want) {
			t.Fatalf("pipeline record lacks %q:\n%s", want, rec)
		}
	}

	// A failing test: refused, its output shown, v1 still serving.
	p := filepath.Join(app, "moorage.yaml")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "test -f message.txt", "echo FAILING-TEST-OUTPUT; exit 3", 1)), 0o644)
	setMessage(t, app, "second")
	out, errOut, code = s.run("pipeline", app)
	if code == 0 || !strings.Contains(out+errOut, "FAILING-TEST-OUTPUT") || !strings.Contains(out+errOut, "test failed") {
		t.Fatalf("failing pipeline: exit %d\n%s%s", code, out, errOut)
	}
	if st := s.ps("hello"); st.Active != "v1" {
		t.Fatalf("active %s after a failed test, want v1", st.Active)
	}
	s.waitBody("/", "first")
}

// startPipeline runs `moorage pipeline dir` in the background and waits
// for a line of its output holding marker; wait returns its exit code and
// output.
func startPipeline(t *testing.T, s *server, dir, marker string) (wait func() (int, string)) {
	t.Helper()
	cmd := exec.Command(binary, "pipeline", dir)
	cmd.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() {
		cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()
	waitFor(t, 3*time.Minute, "the pipeline to print "+marker, func() error {
		if strings.Contains(out.String(), marker) {
			return nil
		}
		select {
		case code := <-exited:
			exited <- code
			t.Fatalf("the pipeline ended (exit %d) before %s:\n%s", code, marker, out.String())
		default:
		}
		return fmt.Errorf("not yet")
	})
	return func() (int, string) {
		select {
		case code := <-exited:
			return code, out.String()
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the pipeline's client did not end after the server died:\n%s", out.String())
			return 0, ""
		}
	}
}

// SIGKILL of the server mid-pipeline: the pusher sees a clear failure; at
// the next start the pipeline's record is closed as what happened: killed
// in its test stage it deployed nothing; killed in its deploy stage (a
// release task running) the deploy is undone as any interrupted deploy,
// and the pipeline ends as its deploy did. The active release serves
// throughout, and the next pipeline runs.
func TestPipelineSIGKILL(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "v1")
	s.deploy(app, 0)
	pipelines := func() []api.Deploy {
		var ds []api.Deploy
		if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json", "-n", "50")), &ds); err != nil {
			t.Fatal(err)
		}
		var out []api.Deploy
		for _, d := range ds {
			if d.Kind == "pipeline" {
				out = append(out, d)
			}
		}
		return out
	}
	// The stream ends without its done event: the client says so, and
	// where the outcome will be.
	clearFailure := regexp.MustCompile("(lost the server's event stream|the server closed the event stream before the operation ended).*see `moorage deploys`")

	// Killed in the test stage.
	appendSpec(t, app, "test:\n  commands: [sh -c \"echo TEST-STARTED; sleep 120\"]\n")
	setMessage(t, app, "never")
	wait := startPipeline(t, s, app, "TEST-STARTED")
	s.kill()
	if code, out := wait(); code == 0 || !clearFailure.MatchString(out) {
		t.Fatalf("the pusher's client after SIGKILL: exit %d\n%s", code, out)
	}
	s.start()
	ps := pipelines()
	if len(ps) != 1 || ps[0].Status != "failed" || !strings.Contains(ps[0].Reason, "during its test stage: nothing was deployed") {
		t.Fatalf("the interrupted pipeline's record: %+v", ps)
	}
	s.waitBody("/", "v1")

	// Killed in the deploy stage, while its release task runs.
	p := filepath.Join(app, "moorage.yaml")
	b, _ := os.ReadFile(p)
	spec := strings.Replace(string(b), "echo TEST-STARTED; sleep 120", "true", 1)
	spec = strings.Replace(spec, "  - ./hello migrate\n", "  - sh -c \"echo MIGRATING; sleep 120\"\n", 1)
	os.WriteFile(p, []byte(spec), 0o644)
	wait = startPipeline(t, s, app, "MIGRATING")
	s.kill()
	if code, out := wait(); code == 0 || !clearFailure.MatchString(out) {
		t.Fatalf("the pusher's client after SIGKILL: exit %d\n%s", code, out)
	}
	s.start()
	ps = pipelines()
	if len(ps) != 2 || ps[0].Status != "failed" || !regexp.MustCompile(`^deploy #\d+ failed \(the pipeline was interrupted by a server restart during its deploy stage\)`).MatchString(ps[0].Reason) {
		t.Fatalf("the pipeline interrupted in its deploy stage: %+v", ps[0])
	}
	if st := s.ps("hello"); st.Active != "v1" {
		t.Fatalf("active %s after the interrupted deploy, want v1", st.Active)
	}
	s.waitBody("/", "v1")

	// Nothing is left locked: the next pipeline deploys.
	os.WriteFile(p, []byte(strings.Replace(spec, "echo MIGRATING; sleep 120", "echo MIGRATING", 1)), 0o644)
	setMessage(t, app, "after")
	if out, errOut, code := s.run("pipeline", app); code != 0 {
		t.Fatalf("the pipeline after the restarts: exit %d\n%s%s", code, out, errOut)
	}
	s.waitBody("/", "after")
}

// lockedBuffer is a bytes.Buffer a command writes while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
