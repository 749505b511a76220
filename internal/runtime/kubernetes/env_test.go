package kubernetes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
)

// TestKubernetesInShell: a command run by inShell in a real /bin/sh, with
// an environment, gets the arguments runtime.Expand makes of it in that
// environment (what the other runtimes run), whatever the arguments hold:
// quotes, backslashes, backquotes, "$$", references to unset variables,
// values with spaces and shell syntax. No value of the environment is in
// the command. An argv with no reference runs as it is, with no shell.
func TestKubernetesInShell(t *testing.T) {
	dir := t.TempDir()
	// The command: prints each of its arguments NUL-terminated.
	args := filepath.Join(dir, "args")
	if err := os.WriteFile(args, []byte("#!/bin/sh\nfor a; do printf '%s\\0' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"A":      "a b  c",
		"SECRET": "s$e\"c`r\\et $(id) *",
		"EMPTY":  "",
		"_X1":    "x1",
		"DIR":    dir,
	}
	for _, argv := range [][]string{
		{args, "$A"},
		{"$DIR/args", "${A}", "$SECRET", "$EMPTY", "$UNSET", "${_X1}z", "$_X1"},
		{args, "pre-$A-post", "$$A", "$$$A", "100%", "a\"b", "a\\b", "`x`", "'q'", "!", "*", "$(A)", "a\nb", ""},
		{args, "$1", "${a b}", "$", "end$", "$*", "$A"},
	} {
		cmd := inShell(argv)
		if cmd[0] != "/bin/sh" {
			t.Fatalf("inShell(%q) = %q, want /bin/sh -c", argv, cmd)
		}
		if strings.Contains(strings.Join(cmd, " "), "s$e") || strings.Contains(strings.Join(cmd, " "), "a b  c") {
			t.Errorf("inShell(%q) = %q: it holds a value of the environment", argv, cmd)
		}
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Env = runtime.EnvList(env)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		if err := c.Run(); err != nil {
			t.Fatalf("inShell(%q) = %q: %v\n%s", argv, cmd, err, errOut.String())
		}
		got := strings.Split(out.String(), "\x00")
		got = got[:len(got)-1]
		if want := runtime.Expand(argv, env)[1:]; !slices.Equal(got, want) {
			t.Errorf("inShell(%q) = %q\nthe command got %q, want %q (runtime.Expand)", argv, cmd, got, want)
		}
	}
	for _, argv := range [][]string{{"./app", "serve"}, {"echo", "$$HOME", "100%"}} {
		if got, want := inShell(argv), runtime.Expand(argv, nil); !slices.Equal(got, want) {
			t.Errorf("inShell(%q) = %q, want %q, with no shell", argv, got, want)
		}
	}
}
