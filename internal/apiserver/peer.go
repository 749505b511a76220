package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/api"
)

// Peer is who is at the other end of a control socket connection, from
// the kernel (SO_PEERCRED), not from anything the client says.
type Peer struct {
	UID  int
	PID  int    // the connecting process (the CLI, or `moorage dial-stdio` over ssh)
	User string // the uid's user name ("" if the uid has none)
	// SSHFrom is the client address when the connecting process runs in
	// an ssh session (SSH_CONNECTION in its environment).
	SSHFrom string
	// SSHUser is the person behind a shared ssh account, as its
	// authorized_keys forced command names it (MOORAGE_SSH_USER, e.g.
	// command="MOORAGE_SSH_USER=alice moorage dial-stdio"); "" otherwise.
	SSHUser string
	// SudoUser is who ran the CLI through sudo (SUDO_USER) when the uid
	// is root's.
	SudoUser string
}

// String is the audit's "who": "alice (uid 1000)", "deploy (uid 1001) over
// ssh as carol from 203.0.113.9", "root (uid 0) via sudo by bob".
func (p Peer) String() string {
	name := p.User
	if name == "" {
		name = "uid " + strconv.Itoa(p.UID)
	} else {
		name += " (uid " + strconv.Itoa(p.UID) + ")"
	}
	if p.SSHFrom != "" || p.SSHUser != "" {
		name += " over ssh"
		if p.SSHUser != "" {
			name += " as " + p.SSHUser
		}
		if p.SSHFrom != "" {
			name += " from " + p.SSHFrom
		}
	}
	if p.SudoUser != "" {
		name += " via sudo by " + p.SudoUser
	}
	return name
}

type peerKey struct{}

// ConnContext is the control API server's http.Server.ConnContext: it
// records the credentials of the process at the other end of a unix
// socket connection, which the audit (the owner of every operation) is
// taken from.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	p, err := peerOf(c)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerOf returns the peer ConnContext recorded.
func PeerOf(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// peerOf reads c's peer credentials.
func peerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("%T is not a unix socket connection", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	p := Peer{UID: int(cred.Uid), PID: int(cred.Pid)}
	if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil {
		p.User = u.Username
	}
	env := processEnv(p.PID, cred.Uid)
	if sc := env["SSH_CONNECTION"]; sc != "" {
		// "client_ip client_port server_ip server_port"
		p.SSHFrom, _, _ = strings.Cut(sc, " ")
	}
	p.SSHUser = clean(env["MOORAGE_SSH_USER"], 64)
	if p.UID == 0 {
		p.SudoUser = clean(env["SUDO_USER"], 64)
	}
	return p, nil
}

// processEnv reads the environment of process pid, if it still belongs to
// uid (not a recycled pid) and this server may read it (its own uid, or
// root); empty otherwise.
func processEnv(pid int, uid uint32) map[string]string {
	dir := "/proc/" + strconv.Itoa(pid)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid {
		return nil
	}
	b, err := os.ReadFile(dir + "/environ")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		switch k {
		case "SSH_CONNECTION", "MOORAGE_SSH_USER", "SUDO_USER":
			if ok {
				out[k] = v
			}
		}
	}
	return out
}

// clean keeps a name printable and at most max bytes long.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max]
	}
	return s
}

// owner is who runs an operation, for the audit (deploy records, locks,
// events): the socket peer's credentials. What the client says about
// itself (X-Moorage-Owner: its user, host and pid) is added as a claim; it
// is all there is only when the connection has no credentials (not a unix
// socket: tests).
func owner(r *http.Request) string {
	claim := clean(r.Header.Get(api.HeaderOwner), 200)
	p, ok := PeerOf(r.Context())
	switch {
	case ok && claim != "":
		return p.String() + ", client " + claim
	case ok:
		return p.String()
	case claim != "":
		return claim
	}
	return "unknown client"
}
