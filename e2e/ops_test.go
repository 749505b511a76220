package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runStdin runs the CLI with stdin.
func (s *server) runStdin(stdin string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return o.String(), e.String(), code
}

// grepDir returns the files under dir that contain needle.
func grepDir(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// A secret set through the CLI reaches the app, while it is nowhere in the
// data dir, the logs, the server's output or any API answer.
func TestSecretsReachAppButNothingElse(t *testing.T) { runtimes(t, testSecretsReachAppButNothingElse) }

func testSecretsReachAppButNothingElse(t *testing.T, rt string) {
	// The server's own environment holds a secret of its own: builds do
	// not get it.
	serverSecret := "server-s3cr3t-" + fmt.Sprint(time.Now().UnixNano())
	s := startServerRT(t, rt, "MOORAGE_TEST_SERVER_SECRET="+serverSecret)
	app := s.hello(t, append(fastSpec, "release:", "secrets: [API_TOKEN]\nenv:\n  PLAIN: visible\nrelease:",
		"  command: env CGO_ENABLED=0 go build -o hello .",
		`  command: sh -c 'echo "build-env server=[$$MOORAGE_TEST_SERVER_SECRET] token=[$$API_TOKEN] plain=[$$PLAIN]"; exec env CGO_ENABLED=0 go build -o hello .'`,
		// A check that names the secret: it works, and the deploy warns.
		"services:", "checks:\n  - sh -c 'test -n \"$API_TOKEN\"'\nservices:")...)
	secret1 := "s3cr3t-" + fmt.Sprint(time.Now().UnixNano())
	secret2 := "s3cr3t-two-" + fmt.Sprint(time.Now().UnixNano())

	// A deploy that declares a secret not set yet is refused, saying how.
	out := s.deploy(app, 1)
	if !strings.Contains(out, "API_TOKEN") || !strings.Contains(out, "config set --secret") {
		t.Fatalf("deploy without the secret:\n%s", out)
	}
	// Set from stdin before the first deploy (staged: nothing runs yet).
	if o, e, code := s.runStdin(secret1+"\n", "config", "set", "--secret", "-a", "hello", "API_TOKEN"); code != 0 {
		t.Fatalf("config set --secret: %d\n%s%s", code, o, e)
	}
	out = s.deploy(app, 0)
	s.waitBody("/env/API_TOKEN", secret1)
	if !strings.Contains(out, "build-env server=[] token=[] plain=[visible]") {
		t.Fatalf("build.command's environment:\n%s", out)
	}
	if !strings.Contains(out, "warning: checks[0] passes the secret $API_TOKEN as an argument") || strings.Contains(out, "services.web") {
		t.Fatalf("no warning (or a wrong one) about the check naming a secret:\n%s", out)
	}

	// Rotating it rolls out a new release.
	out = s.mustRun("config", "set", "--secret", "-a", "hello", "API_TOKEN="+secret2)
	if strings.Contains(out, secret2) {
		t.Fatalf("config set echoed the secret:\n%s", out)
	}
	s.waitBody("/env/API_TOKEN", secret2)
	s.mustRun("config", "set", "-a", "hello", "PLAIN=changed")
	s.waitBody("/env/PLAIN", "changed")

	list := s.mustRun("config", "-a", "hello")
	if !strings.Contains(list, "API_TOKEN") || !strings.Contains(list, "(secret)") || !strings.Contains(list, "PLAIN") {
		t.Fatalf("config list:\n%s", list)
	}
	var apiOut strings.Builder
	for _, args := range [][]string{
		{"config", "-a", "hello", "--json"}, {"ps", "-a", "hello", "--json"}, {"releases", "-a", "hello", "--json"},
		{"deploys", "-a", "hello", "--json", "-n", "50"}, {"logs", "-a", "hello", "-n", "0"}, {"apps", "--json"},
	} {
		apiOut.WriteString(s.mustRun(args...))
	}
	// No process shows a secret on its command line (services get them in
	// their environment only), on either runtime: container processes are
	// in the host's /proc too.
	if pids := cmdlinesWith(secret1, secret2, serverSecret); len(pids) > 0 {
		t.Fatalf("a secret is on the command line of %v", pids)
	}
	for _, sec := range []string{secret1, secret2, serverSecret} {
		if strings.Contains(apiOut.String(), sec) || strings.Contains(list, sec) {
			t.Fatalf("a secret appears in CLI/API output")
		}
		if hits := grepDir(t, s.dataDir, []byte(sec)); len(hits) > 0 {
			t.Fatalf("secret found in the data dir: %v", hits)
		}
		if sec != serverSecret && strings.Contains(s.logs(), sec) {
			t.Fatalf("secret found in the server's log")
		}
	}
	// Releases remember which config they had, by name only.
	rels := s.mustRun("releases", "-a", "hello")
	if !strings.Contains(rels, "API_TOKEN(secret)") || !strings.Contains(rels, "config set API_TOKEN") {
		t.Fatalf("releases:\n%s", rels)
	}
	// Rolling back restores the previous secret too.
	s.mustRun("rollback", "-a", "hello", "--to", "v1")
	s.waitBody("/env/API_TOKEN", secret1)
}

// cmdlinesWith returns the processes whose command line contains one of
// the needles.
func cmdlinesWith(needles ...string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	return out
}

// Scaling up and down under continuous requests fails no request; a
// singleton refuses more than one instance; history records it.
func TestScaleUnderLoad(t *testing.T) { runtimes(t, testScaleUnderLoad) }

func testScaleUnderLoad(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, fastSpec...)
	s.deploy(app, 0)
	s.waitBody("/", "release=v1")
	ld := startLoader(s.http, "/", 2)
	s.mustRun("scale", "-a", "hello", "web=4", "worker=2")
	waitFor(t, 30*time.Second, "4 web instances to serve", func() error {
		seen := map[string]bool{}
		for i := 0; i < 40; i++ {
			_, body, err := s.get("/")
			if err != nil {
				return err
			}
			if m := bodyRE.FindStringSubmatch(strings.TrimSpace(body)); m != nil {
				seen[m[3]] = true
			}
		}
		if len(seen) != 4 {
			return fmt.Errorf("responses from %d instances", len(seen))
		}
		return nil
	})
	s.mustRun("scale", "-a", "hello", "web=1", "worker=1")
	results := ld.stop()
	if f := failures(results); len(f) > 0 {
		t.Fatalf("%d of %d requests failed while scaling; first: %s", len(f), len(results), f[0])
	}
	count := map[string]int{}
	for _, in := range s.ps("hello").serving() {
		count[in.Service]++
	}
	if count["web"] != 1 || count["worker"] != 1 || count["scheduler"] != 1 {
		t.Fatalf("after scaling down: %v", count)
	}
	// A singleton stays single.
	out, errOut, code := s.run("scale", "-a", "hello", "scheduler=2")
	if code == 0 || !strings.Contains(out+errOut, "singleton") {
		t.Fatalf("scheduler=2 was not refused: %d\n%s%s", code, out, errOut)
	}
	// No release was created, the scale is in history, and it sticks across
	// a deploy.
	rels := s.mustRun("releases", "-a", "hello")
	if strings.Contains(rels, "v2") {
		t.Fatalf("scaling created a release:\n%s", rels)
	}
	var ds []struct {
		Kind string `json:"kind"`
	}
	json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds)
	if len(ds) < 3 || ds[0].Kind != "scale" || ds[1].Kind != "scale" {
		t.Fatalf("history: %+v", ds)
	}
	s.deploy(app, 0)
	count = map[string]int{}
	for _, in := range s.ps("hello").serving() { // v1's web stays warm
		count[in.Service]++
	}
	if count["web"] != 1 {
		t.Fatalf("a deploy forgot the scale: %v", count)
	}
	if ps := s.mustRun("ps", "-a", "hello"); !regexp.MustCompile(`hello-web-v1-1\s+service\s+v1\s+running\s+warm until \d\d:\d\d:\d\d`).MatchString(ps) {
		t.Errorf("moorage ps does not show v1's web warm:\n%s", ps)
	}
	if !regexp.MustCompile(`web=1`).MatchString(s.mustRun("releases", "-a", "hello")) {
		t.Fatalf("release formation does not show the scale")
	}
}

// `moorage run` runs in the active release with its env and volumes,
// streams output and input, and propagates the exit code.
func TestRunOneOff(t *testing.T) { runtimes(t, testRunOneOff) }

func testRunOneOff(t *testing.T, rt string) {
	s := startServerRT(t, rt)
	app := s.hello(t, append(fastSpec, "release:", "env:\n  PLAIN: from-spec\nrelease:")...)
	s.deploy(app, 0)
	out, errOut, code := s.run("run", "-a", "hello", "--", "sh", "-c", "echo plain=$PLAIN release=$MOORAGE_RELEASE; echo oops >&2; ls $MOORAGE_VOLUME_DATA/schema.json; exit 7")
	if code != 7 {
		t.Fatalf("exit %d, want 7\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "plain=from-spec release=v1") || !strings.Contains(out, "schema.json") || !strings.Contains(errOut, "oops") {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	out, _, code = s.runStdin("hello from stdin\n", "run", "-a", "hello", "worker", "--", "cat")
	if code != 0 || out != "hello from stdin\n" {
		t.Fatalf("stdin: exit %d out %q", code, out)
	}
	if out, errOut, code = s.run("run", "-a", "hello", "--", "./hello", "migrate"); code != 0 || !strings.Contains(out+errOut, "nothing to apply") {
		t.Fatalf("run migrate: %d %s%s", code, out, errOut)
	}
	if _, errOut, code = s.run("run", "-a", "hello", "nosuch", "--", "true"); code == 0 || !strings.Contains(errOut, "no service") {
		t.Fatalf("unknown service: %d %s", code, errOut)
	}
	if _, errOut, code = s.run("run", "-a", "hello", "--", "/no/such/binary"); code == 0 {
		t.Fatalf("missing binary: exit 0 %s", errOut)
	}
}
