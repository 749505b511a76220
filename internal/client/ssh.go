package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ErrBadHost is returned for a server address the client cannot use.
var ErrBadHost = errors.New("bad server address")

const sshHostForm = "ssh://[user@]host[:port][/path/to/moorage.sock]"

// sshTarget is a server reached through ssh: the client runs
// `ssh [-p port] [user@]host moorage dial-stdio [--socket PATH]` and speaks
// HTTP over the command's standard input and output.
type sshTarget struct {
	user   string
	host   string
	port   string
	socket string // on the remote host; "" = the remote's default socket
}

// parseSSH parses ssh://[user@]host[:port][/path/to/moorage.sock].
func parseSSH(raw string) (sshTarget, error) {
	shown := raw
	bad := func(why string) (sshTarget, error) {
		return sshTarget{}, fmt.Errorf("%w: --host %q: %s; use %s", ErrBadHost, shown, why, sshHostForm)
	}
	u, err := url.Parse(raw)
	if err != nil {
		shown = "ssh://..." // it may hold a password

		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad(err.Error())
	}
	if u.Opaque != "" {
		return bad("ssh:// needs the two slashes")
	}
	shown = u.Redacted()
	if _, ok := u.User.Password(); ok {
		return bad("passwords do not belong in the address; ssh asks for one, or better, use a key")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("it has a ?query or #fragment")
	}
	t := sshTarget{user: u.User.Username(), host: u.Hostname(), port: u.Port()}
	switch {
	case t.host == "":
		return bad("no host")
	case strings.HasPrefix(t.host, "-"), strings.HasPrefix(t.user, "-"):
		return bad("a host or user cannot start with '-'")
	case strings.Contains(t.host, ":") && !strings.HasPrefix(u.Host, "["):
		return bad("too many colons (an IPv6 address goes in brackets: ssh://[::1]:22)")
	}
	if t.port != "" {
		if n, err := strconv.Atoi(t.port); err != nil || n < 1 || n > 65535 {
			return bad("port " + strconv.Quote(t.port) + " is not a number from 1 to 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("an empty port")
	}
	if u.Path != "" && u.Path != "/" {
		t.socket = u.Path
	}
	return t, nil
}

// String is the target as an address (what Client.Addr shows).
func (t sshTarget) String() string {
	s := "ssh://"
	if t.user != "" {
		s += t.user + "@"
	}
	if strings.Contains(t.host, ":") {
		s += "[" + t.host + "]"
	} else {
		s += t.host
	}
	if t.port != "" {
		s += ":" + t.port
	}
	return s + t.socket
}

// dest is ssh's destination argument.
func (t sshTarget) dest() string {
	if t.user != "" {
		return t.user + "@" + t.host
	}
	return t.host
}

// remoteCommand is what the remote shell runs. bin is a command, not only a
// path ("sudo -n moorage" works), so it is not quoted; the socket is.
func (t sshTarget) remoteCommand(bin string) string {
	cmd := bin + " dial-stdio"
	if t.socket != "" {
		cmd += " --socket " + shellQuote(t.socket)
	}
	return cmd
}

// sshArgs are the arguments of ssh.
func (t sshTarget) sshArgs(bin string) []string {
	args := []string{"-T"}
	if t.port != "" {
		args = append(args, "-p", t.port)
	}
	return append(args, "--", t.dest(), t.remoteCommand(bin))
}

// command is the ssh process of one connection. sshCommand, when set,
// replaces "ssh" and is run by sh with the arguments appended, like git's
// GIT_SSH_COMMAND ("ssh -F ~/.ssh/other_config").
func (t sshTarget) command(sshCommand, bin string) *exec.Cmd {
	args := t.sshArgs(bin)
	if sshCommand == "" {
		return exec.Command("ssh", args...)
	}
	return exec.Command("/bin/sh", append([]string{"-c", "exec " + sshCommand + ` "$@"`, "ssh"}, args...)...)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshDialer opens one ssh process per connection: HTTP keep-alive reuses
// it, and an upgraded connection (`moorage run`) owns its own.
type sshDialer struct {
	target     sshTarget
	sshCommand string
	remoteBin  string
}

func (d *sshDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return startCmdConn(d.target.command(d.sshCommand, d.remoteBin), SSHError{Target: d.target.String(), RemoteBin: d.remoteBin})
}

// SSHError is how the ssh command of a connection failed: it could not
// start, or it exited with a status and a complaint on its standard error.
type SSHError struct {
	Target    string // ssh://...
	RemoteBin string // the command that runs moorage there
	Err       error  // ssh could not start
	Status    int    // exit status; -1 when killed by a signal
	LastLine  string // the last line ssh (or the remote command) wrote on standard error
}

func (e *SSHError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("cannot run ssh: %v", e.Err)
	}
	if e.Status < 0 {
		return "ssh was killed"
	}
	msg := fmt.Sprintf("ssh exited with status %d", e.Status)
	if e.LastLine != "" {
		msg += ": " + e.LastLine
	}
	return msg
}

func (e *SSHError) Unwrap() error { return e.Err }

// hint says what to do about e, or "".
func (e *SSHError) hint() string {
	l := strings.ToLower(e.LastLine)
	switch {
	case e.Err != nil:
		return "install OpenSSH's client (ssh), or name another one in MOORAGE_SSH_COMMAND"
	case (e.Status == 126 || e.Status == 127) && e.mentionsRemoteBin():
		return "the remote host runs no `" + e.RemoteBin + "`: install moorage there, or give its path with --remote-bin (or MOORAGE_REMOTE_BIN), e.g. --remote-bin /usr/local/bin/moorage"
	case strings.Contains(l, "host key verification failed"):
		return "ssh does not trust the host's key: connect once with `ssh " + hostOf(e.Target) + "` and check the fingerprint, or fix ~/.ssh/known_hosts"
	case strings.Contains(l, "permission denied"):
		return "check the user in the address and that your key (ssh-agent, or IdentityFile in ~/.ssh/config) is in the remote user's authorized_keys"
	case strings.Contains(l, "unknown command") && strings.Contains(l, "dial-stdio"):
		return "the remote moorage is too old for ssh:// hosts; upgrade it"
	}
	return ""
}

// mentionsRemoteBin reports whether the last line is about the remote
// moorage command (and not, say, a missing ssh).
func (e *SSHError) mentionsRemoteBin() bool {
	f := strings.Fields(e.RemoteBin)
	return len(f) > 0 && strings.Contains(e.LastLine, f[len(f)-1])
}

// hostOf is the [user@]host of an ssh:// address.
func hostOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	args := ""
	if u.Port() != "" {
		args = "-p " + u.Port() + " "
	}
	if u.User != nil {
		return args + u.User.Username() + "@" + u.Hostname()
	}
	return args + u.Hostname()
}

// withDefaults fills in what the environment says.
func (o Options) withDefaults() Options {
	if o.Host == "" {
		o.Host = os.Getenv("MOORAGE_HOST")
	}
	if o.RemoteBin == "" {
		o.RemoteBin = os.Getenv("MOORAGE_REMOTE_BIN")
	}
	if o.RemoteBin == "" {
		o.RemoteBin = "moorage"
	}
	if o.SSHCommand == "" {
		o.SSHCommand = os.Getenv("MOORAGE_SSH_COMMAND")
	}
	return o
}
