package apiserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/api"
)

// servePeer serves owner(r) on a unix socket, with ConnContext as the
// server installs it.
func servePeer(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, owner(r)) }),
		ConnContext: ConnContext,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func getOwner(sock, claim string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest("GET", "http://moorage/", nil)
	if claim != "" {
		req.Header.Set(api.HeaderOwner, claim)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The owner is the socket peer's uid and user name; what the client says
// about itself is only a claim added to it.
func TestOwnerFromPeerCredentials(t *testing.T) {
	sock := servePeer(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	got, err := getOwner(sock, "mallory@elsewhere (pid 1)")
	if err != nil {
		t.Fatal(err)
	}
	want := u.Username + " (uid " + strconv.Itoa(os.Getuid()) + ")"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("owner %q, want it to start with %q (the peer's credentials)", got, want)
	}
	if !strings.HasSuffix(got, `, client mallory@elsewhere (pid 1)`) {
		t.Fatalf("owner %q does not show the client's claim as a claim", got)
	}
	if strings.Contains(got, "ssh") {
		t.Fatalf("owner %q says ssh, but this test's process has no ssh session", got)
	}
}

// Over ssh, the CLI's `moorage dial-stdio` runs in the ssh session: its
// SSH_CONNECTION names the client's address, and a forced command's
// MOORAGE_SSH_USER the person behind a shared account.
func TestOwnerOverSSH(t *testing.T) {
	sock := servePeer(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MOORAGE_PEER_HELPER_SOCK="+sock,
		"SSH_CONNECTION=203.0.113.9 51234 10.0.0.1 22", "MOORAGE_SSH_USER=carol")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "over ssh as carol from 203.0.113.9") {
		t.Fatalf("helper got owner:\n%s\nwant it to say: over ssh as carol from 203.0.113.9", out)
	}
}

// TestMain runs the helper of TestOwnerOverSSH when asked to: a process
// with an ssh session's environment that connects and prints its owner.
func TestMain(m *testing.M) {
	if sock := os.Getenv("MOORAGE_PEER_HELPER_SOCK"); sock != "" {
		got, err := getOwner(sock, "")
		if err != nil {
			fmt.Println("ERROR:", err)
			os.Exit(1)
		}
		fmt.Println("OWNER:", got)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Without credentials (not a unix socket), only the claim is known.
func TestOwnerWithoutPeer(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	if got := owner(r); got != "unknown client" {
		t.Fatalf("owner %q", got)
	}
	r.Header.Set(api.HeaderOwner, "a@b (pid 2)\x1b[31m")
	if got := owner(r); got != "a@b (pid 2)[31m" {
		t.Fatalf("owner %q: control characters must go", got)
	}
}
