package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sshd is an OpenSSH server of the test's own on a loopback port: a host key
// and a client key made for the test, the current user let in with it.
type sshd struct {
	t    *testing.T
	dir  string
	addr string // 127.0.0.1:PORT
	user string
	cmd  *exec.Cmd
	done chan struct{} // closed when sshd has exited
	log  *lockedWriter
	buf  *bytes.Buffer
}

// requireSSH finds sshd, ssh and ssh-keygen: missing, the test skips, or
// fails under MOORAGE_REQUIRE_DOCKER=1 (CI installs them: .ci/run).
func requireSSH(t *testing.T) (sshdPath string) {
	t.Helper()
	var missing []string
	sshdPath, err := exec.LookPath("sshd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/sshd"); serr == nil {
			sshdPath = "/usr/sbin/sshd"
		} else {
			missing = append(missing, "sshd (openssh-server)")
		}
	}
	for _, p := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p+" (openssh-client)")
		}
	}
	if len(missing) == 0 {
		return sshdPath
	}
	msg := "no " + strings.Join(missing, ", ") + " on this machine"
	if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but %s; install openssh-server and openssh-client", msg)
	}
	t.Skipf("%s; install openssh-server and openssh-client to run it (MOORAGE_REQUIRE_DOCKER=1 fails instead)", msg)
	return ""
}

// startSSHD starts sshd; it stops at the end of the test.
func startSSHD(t *testing.T) *sshd {
	t.Helper()
	bin := requireSSH(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd run by root wants its privilege separation directory, which
		// the package's service unit would create.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &sshd{t: t, dir: t.TempDir(), user: u.Username, buf: &bytes.Buffer{}}
	d.log = &lockedWriter{mu: &sync.Mutex{}, w: d.buf}
	d.keygen("host_key")
	d.keygen("id")
	d.keygen("other_id")
	d.keygen("other_host_key")
	pub, err := os.ReadFile(d.path("id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	d.write("authorized_keys", string(pub))
	for attempt := 0; ; attempt++ {
		d.addr = freePort(t)
		_, port, _ := net.SplitHostPort(d.addr)
		d.write("sshd_config", fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
HostKey %s
AuthorizedKeysFile %s
AllowUsers %s
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment no
X11Forwarding no
LogLevel VERBOSE
`, port, d.path("host_key"), d.path("authorized_keys"), d.user))
		if err := d.start(bin); err == nil {
			break
		} else if attempt == 4 {
			t.Fatalf("sshd: %v\n%s", err, d.logs())
		}
	}
	t.Cleanup(d.stop)
	hostPub, _ := os.ReadFile(d.path("host_key.pub"))
	otherPub, _ := os.ReadFile(d.path("other_host_key.pub"))
	d.write("known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s", d.port(), hostPub))
	d.write("wrong_known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s", d.port(), otherPub))
	return d
}

func (d *sshd) path(name string) string { return filepath.Join(d.dir, name) }

func (d *sshd) port() string {
	_, p, _ := net.SplitHostPort(d.addr)
	return p
}

func (d *sshd) write(name, content string) {
	if err := os.WriteFile(d.path(name), []byte(content), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

func (d *sshd) keygen(name string) {
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "moorage-e2e", "-f", d.path(name)).CombinedOutput()
	if err != nil {
		d.t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

// start runs sshd in the foreground and waits until it accepts
// connections; an error means it exited (a port taken since freePort).
func (d *sshd) start(bin string) error {
	d.cmd = exec.Command(bin, "-D", "-e", "-f", d.path("sshd_config"))
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	var waitErr error
	go func() { waitErr = d.cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-d.done:
			return fmt.Errorf("sshd exited: %v", waitErr)
		default:
		}
		if c, err := net.DialTimeout("tcp", d.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			d.cmd.Process.Kill()
			<-d.done
			d.t.Fatalf("sshd does not accept connections at %s:\n%s", d.addr, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends sshd (sessions still open end with their connections).
func (d *sshd) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	if d.t.Failed() {
		d.t.Logf("sshd log:\n%s", tail(d.logs(), 80))
	}
}

func (d *sshd) logs() string {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	return d.buf.String()
}

// sshCommand is MOORAGE_SSH_COMMAND for this sshd: no user config, the
// test's key and known_hosts, never a prompt.
func (d *sshd) sshCommand(id, knownHosts string) string {
	return fmt.Sprintf("ssh -F none -i %s -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes",
		d.path(id), d.path(knownHosts))
}

// remoteCLI runs the CLI against a server through ssh.
type remoteCLI struct {
	t   *testing.T
	env []string
}

func (d *sshd) cli(host string, env ...string) *remoteCLI {
	return &remoteCLI{t: d.t, env: append([]string{
		"MOORAGE_HOST=" + host,
		"MOORAGE_SSH_COMMAND=" + d.sshCommand("id", "known_hosts"),
		"MOORAGE_REMOTE_BIN=" + binary,
	}, env...)}
}

func (r *remoteCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), r.env...)
	return cmd
}

func (r *remoteCLI) run(stdin string, args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return o.String(), e.String(), code
}

func (r *remoteCLI) mustRun(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run("", args...)
	if code != 0 {
		r.t.Fatalf("moorage %s over ssh: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustFail runs the CLI, wants a failure, and returns its standard error.
func (r *remoteCLI) mustFail(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run("", args...)
	if code == 0 {
		r.t.Fatalf("moorage %s over ssh: exit 0, want a failure\n%s%s", strings.Join(args, " "), out, errOut)
	}
	return errOut
}

// dialStdioProcs lists the dial-stdio processes serving sock.
func dialStdioProcs(sock string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		c := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		if strings.Contains(c, "dial-stdio") && strings.Contains(c, sock) {
			found = append(found, e.Name()+": "+c)
		}
	}
	return found
}

// The CLI on another machine: every command goes through ssh to
// `moorage dial-stdio` next to the server, and what ssh or the remote side
// gets wrong is said plainly.
func TestSSHRemoteCLI(t *testing.T) {
	parallel(t)
	d := startSSHD(t)
	s := startServer(t)
	sock := socketOf(s.dataDir)
	host := "ssh://" + d.user + "@" + d.addr + sock
	r := d.cli(host)

	if out := r.mustRun("version"); !strings.Contains(out, "server: moorage") {
		t.Fatalf("version over ssh:\n%s", out)
	}

	// What goes wrong says what and how to fix it.
	if e := r.mustFail("apps", "--remote-bin", "/nonexistent/moorage"); !strings.Contains(e, "status 127") || !strings.Contains(e, "--remote-bin") {
		t.Errorf("no moorage on the remote host:\n%s", e)
	}
	bad := d.cli("ssh://" + d.user + "@" + d.addr + "/nonexistent/moorage.sock")
	if e := bad.mustFail("apps"); !strings.Contains(e, "cannot reach the moorage server at unix:///nonexistent/moorage.sock") {
		t.Errorf("no server at the remote socket:\n%s", e)
	}
	wrongKey := d.cli(host, "MOORAGE_SSH_COMMAND="+d.sshCommand("other_id", "known_hosts"))
	if e := wrongKey.mustFail("apps"); !strings.Contains(e, "Permission denied") || !strings.Contains(e, "authorized_keys") {
		t.Errorf("a key the host does not know:\n%s", e)
	}
	wrongHost := d.cli(host, "MOORAGE_SSH_COMMAND="+d.sshCommand("id", "wrong_known_hosts"))
	if e := wrongHost.mustFail("apps"); !strings.Contains(e, "Host key verification failed") || !strings.Contains(e, "known_hosts") {
		t.Errorf("a host key that does not match:\n%s", e)
	}

	// A deploy streams its upload in and its events back.
	app := s.hello(t, fastSpec...)
	setMessage(t, app, "over ssh")
	out, errOut, code := r.run("", "deploy", app)
	if code != 0 || !strings.Contains(out, "to "+host) {
		t.Fatalf("deploy over ssh: exit %d\n%s%s", code, out, errOut)
	}
	s.waitBody("/", "message=over ssh")
	// The audit names the ssh session from the socket peer's credentials
	// (dial-stdio's SSH_CONNECTION), not from what the client says.
	var recs []struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &recs); err != nil || len(recs) == 0 {
		t.Fatalf("deploys --json: %v %+v", err, recs)
	}
	if o := recs[0].Owner; !strings.Contains(o, "(uid ") || !strings.Contains(o, " over ssh from 127.0.0.1") {
		t.Errorf("deploy over ssh recorded owner %q, want the peer's user and uid, over ssh from 127.0.0.1", o)
	}

	var st psStatus
	if err := json.Unmarshal([]byte(r.mustRun("ps", "-a", "hello", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	webs := 0
	for _, in := range st.Instances {
		if in.Service == "web" && in.State == "running" {
			webs++
		}
	}
	if st.Active != "v1" || webs != 2 {
		t.Fatalf("ps over ssh: %+v", st)
	}
	waitFor(t, time.Minute, "the web instances' logs", func() error {
		if out := r.mustRun("logs", "-a", "hello", "-n", "50", "web"); !strings.Contains(out, "web listening") {
			return fmt.Errorf("logs:\n%s", out)
		}
		return nil
	})

	// logs -f follows through ssh, and Ctrl-C leaves no process behind.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	follow := r.command(ctx, "logs", "-a", "hello", "-f", "-n", "0", "worker")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var followErr bytes.Buffer
	follow.Stderr = &followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	followed := false
	for l := range lines {
		if strings.Contains(l, "job done") {
			followed = true
			break
		}
	}
	if !followed {
		follow.Wait()
		t.Fatalf("logs -f over ssh ended without following the worker's lines:\n%s", followErr.String())
	}
	follow.Process.Signal(os.Interrupt)
	for range lines {
	}
	if err := follow.Wait(); err != nil {
		t.Fatalf("logs -f over ssh after SIGINT: %v\n%s", err, followErr.String())
	}

	// run: output, input and the exit code cross ssh.
	if out, errOut, code = r.run("", "run", "-a", "hello", "--", "./hello", "migrate"); code != 0 || !strings.Contains(out+errOut, "nothing to apply") {
		t.Fatalf("run ./hello migrate over ssh: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = r.run("", "run", "-a", "hello", "--", "./hello", "no-such-command"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("run ./hello no-such-command over ssh: exit %d, want 2\n%s", code, errOut)
	}
	if out, _, code = r.run("from afar\n", "run", "-a", "hello", "--", "sh", "-c", "cat; exit 3"); code != 3 || out != "from afar\n" {
		t.Fatalf("run with stdin over ssh: exit %d, want 3; out %q", code, out)
	}

	// With a terminal on both ends (script(1) makes one here), the command
	// gets one too.
	if _, err := exec.LookPath("script"); err == nil {
		tty := exec.CommandContext(ctx, "script", "-qec", binary+` run -a hello -- sh -c 'test -t 0 && test -t 1 && echo on-a-tty; exit 5'`, "/dev/null")
		tty.Env = append(os.Environ(), r.env...)
		// Input stays open until the command is done, as a person's would.
		in, err := tty.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		out, err := tty.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 || !strings.Contains(string(out), "on-a-tty") {
			t.Fatalf("run with a terminal over ssh: %v, want exit 5; output %q", err, out)
		}
	} else if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
		t.Fatal("script(1) (Debian: bsdutils) is needed for the terminal check; CI has it")
	} else {
		t.Log("script(1) missing: the terminal check over ssh is skipped")
	}

	// A secret from standard input, through ssh, reaches the app and
	// shows nowhere.
	const secret = "s3cret-over-ssh-4711"
	out, errOut, code = r.run(secret+"\n", "config", "set", "-a", "hello", "--secret", "SSH_SECRET")
	if code != 0 {
		t.Fatalf("config set --secret over ssh: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, secret) {
		t.Fatalf("config set shows the secret:\n%s%s", out, errOut)
	}
	if cfg := r.mustRun("config", "-a", "hello"); !strings.Contains(cfg, "SSH_SECRET") || strings.Contains(cfg, secret) {
		t.Fatalf("config over ssh:\n%s", cfg)
	}
	if out := r.mustRun("run", "-a", "hello", "--", "sh", "-c", `test "$SSH_SECRET" = `+secret+` && echo matches`); strings.TrimSpace(out) != "matches" {
		t.Fatalf("the app does not see the secret: %q", out)
	}

	// Every command has ended its ssh session.
	waitFor(t, time.Minute, "dial-stdio processes to end", func() error {
		if p := dialStdioProcs(sock); len(p) > 0 {
			return fmt.Errorf("still running:\n%s", strings.Join(p, "\n"))
		}
		return nil
	})
}
