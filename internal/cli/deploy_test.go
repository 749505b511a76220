package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/daemon"
)

// A deploy that cannot reach the server says so on standard error, also
// with --json, whose NDJSON then ends with an error event.
func TestDeployTransportErrorIsNeverSilent(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "moorage.yaml"), []byte("app: a\nservices:\n  web: {command: ./x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := "unix://" + filepath.Join(t.TempDir(), "nobody.sock")
	for _, asJSON := range []bool{false, true} {
		args := []string{"deploy", dir, "--host", host}
		if asJSON {
			args = append(args, "--json")
		}
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr, daemon.Host{}); code != 1 {
			t.Fatalf("%v: exit %d, want 1", args, code)
		}
		if !strings.Contains(stderr.String(), "cannot reach the moorage server") {
			t.Errorf("%v: stderr does not say why:\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
		}
		if strings.Contains(stdout.String(), "cannot reach") && !asJSON {
			t.Errorf("%v: the reason went to stdout:\n%s", args, stdout.String())
		}
		if asJSON {
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			var last struct{ Type, Text string }
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Type != "error" || !strings.Contains(last.Text, "cannot reach") {
				t.Errorf("--json: last line %q is not an error event (%v)", lines[len(lines)-1], err)
			}
		}
	}
}

func TestOpTitle(t *testing.T) {
	if got := opTitle("deploy", 0, "hello"); got != "deploy of hello" {
		t.Errorf("refused before numbering: %q", got)
	}
	if got := opTitle("rollback", 12, "hello"); got != "rollback #12 of hello" {
		t.Errorf("numbered: %q", got)
	}
}
