package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// The forced command survives a path with a space and a quote, as sshd
// hands it to the shell.
func TestForcedCommandQuoting(t *testing.T) {
	bin, host := `/opt/my tools/moor"age`, `unix:///var/lib/moorage x/moorage.sock`
	opt := forcedCommand(bin, host)
	cmd, ok := strings.CutPrefix(opt, `command="`)
	if !ok {
		t.Fatalf("no command option: %s", opt)
	}
	// The option's value ends at the first " not written \".
	var val strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == '\\' && i+1 < len(cmd) && cmd[i+1] == '"' {
			val.WriteByte('"')
			i++
			continue
		}
		if cmd[i] == '"' {
			if rest := cmd[i+1:]; !strings.HasPrefix(rest, ",no-port-forwarding") {
				t.Fatalf("the option ends early, before %q", rest)
			}
			break
		}
		val.WriteByte(cmd[i])
	}
	out, err := exec.Command("sh", "-c", `set -- `+val.String()+`; printf '%s\n' "$@"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := bin + "\n--host\n" + host + "\ngit-shell\n"
	if string(out) != want {
		t.Errorf("the shell sees %q, want %q", out, want)
	}
}
