package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `moorage run` with a terminal on a real three-node swarm, through a
// pseudo-terminal (script(1)) as a person types it: the shell in the
// one-off sees the release's env, reaches a web instance by its service
// name on the app's overlay network, reads what is typed, and its exit
// code comes back; so do piped input and the exit code without a
// terminal. The containers (on the manager) are gone afterwards, and the
// one a killed server left is removed when it starts again.
func swarmRunInteractive(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) (Debian: bsdutils) is needed for the terminal; CI has it")
	}
	s := startServerRT(t, "swarm")
	app := s.hello(t, append(fastSpec, "release:", "env:\n  GREETING: hi-from-the-spec\nrelease:")...)
	s.deploy(app, 0)
	web := ""
	for _, in := range s.ps("hello").serving() {
		if in.Service == "web" && in.State == "running" {
			web = s.prefix + "-" + in.ID
			break
		}
	}
	if web == "" {
		t.Fatalf("no running web instance: %+v", s.ps("hello"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tty := exec.CommandContext(ctx, "script", "-qec", binary+" run -a hello -- sh", "/dev/null")
	tty.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+socketOf(s.dataDir))
	in, err := tty.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// What is typed echoes back: the markers the test looks for are made
	// by the shell ($((...)), read), so only its output has them.
	go io.WriteString(in, strings.Join([]string{
		`test -t 0 && test -t 1 && echo "tty-$((1+1))"`,
		`echo "env-[$GREETING]-[$MOORAGE_APP]"`,
		fmt.Sprintf(`wget -qO- http://%s:8080/healthz && echo " web-$((40+2))"`, web),
		`read line; echo "typed-[$line]"`,
		`a line typed`,
		`exit 7`,
	}, "\n")+"\n")
	out, err := tty.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("run with a terminal: %v, want exit 7; output %q\nserver log:\n%s", err, out, tail(s.logs(), 40))
	}
	for _, want := range []string{"tty-2", "env-[hi-from-the-spec]-[hello]", "ok web-42", "typed-[a line typed]"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the one-off's output has no %q:\n%q", want, out)
		}
	}

	// Without a terminal (input piped in), the same path: the input
	// reaches the command and the exit code comes back.
	piped := exec.CommandContext(ctx, binary, "run", "-a", "hello", "--", "sh", "-c", "cat; exit 3")
	piped.Env = tty.Env
	piped.Stdin = strings.NewReader("piped in\n")
	out, err = piped.Output()
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != "piped in\n" {
		t.Errorf("run with input piped in: %v, want exit 3; output %q", err, out)
	}

	// Nothing is left on the manager (the container goes before Run
	// returns).
	runs := func() string {
		out, err := exec.CommandContext(ctx, "docker", "-H", "unix://"+s.swarm.Manager().Socket, "ps", "-aq", "--filter", "label=moorage.prefix=swarm-run:"+s.prefix).CombinedOutput()
		if err != nil {
			t.Fatalf("docker ps on the manager: %v %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if left := runs(); left != "" {
		t.Errorf("an interactive one-off's container is left on the manager: %q", left)
	}

	// A server killed while a one-off runs leaves its container; the
	// server that starts again removes it.
	held := exec.CommandContext(ctx, "script", "-qec", binary+" run -a hello -- sleep 600", "/dev/null")
	held.Env = tty.Env
	hin, err := held.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer hin.Close()
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	defer held.Wait()
	waitFor(t, time.Minute, "the one-off's container on the manager", func() error {
		if runs() == "" {
			return errors.New("none yet")
		}
		return nil
	})
	s.kill()
	if runs() == "" {
		t.Fatal("the one-off's container went with the killed server: nothing left to check")
	}
	s.start()
	if left := runs(); left != "" {
		t.Errorf("the restarted server did not remove the one-off a killed one left: %q", left)
	}
}
