package dashboard

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/apiserver"
)

// serveOrigin serves originOf(r) on a unix socket, with the peer
// credentials the server's control API records (apiserver.ConnContext).
func serveOrigin(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o := originOf(r)
			fmt.Fprintf(w, "key=%s|addr=%s", o.key, o.addr)
		}),
		ConnContext: apiserver.ConnContext,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// getOrigin asks over sock, claiming an address in X-Forwarded-For as the
// forwarder of `moorage dashboard` (or anyone on the socket) could.
func getOrigin(sock string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest("GET", "http://localhost:8470/dashboard/", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestMain(m *testing.M) {
	if sock := os.Getenv("MOORAGE_ORIGIN_HELPER_SOCK"); sock != "" {
		got, err := getOrigin(sock)
		if err != nil {
			fmt.Println("ERROR:", err)
			os.Exit(1)
		}
		fmt.Println("ORIGIN:", got)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDashboardClientAddress: the address the login limiter counts and the
// audit shows is the real peer, never a header the client sends. Over TCP
// the TCP peer; over the control socket (the ssh route) the socket's peer
// credentials, with the ssh client's address and user.
func TestDashboardClientAddress(t *testing.T) {
	r := httptest.NewRequest("POST", "/dashboard/login", nil)
	r.RemoteAddr = "203.0.113.9:51234"
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	if o := originOf(r); o.key != "203.0.113.9" || o.addr != "203.0.113.9" {
		t.Errorf("over TCP: %+v, want the TCP peer 203.0.113.9", o)
	}

	for _, a := range []string{"[2001:db8:1:2::9]:51234", "[2001:db8:1:2:ffff::1]:443"} {
		r.RemoteAddr = a
		if o := originOf(r); o.key != "2001:db8:1:2::/64" || !strings.HasPrefix(a, "["+o.addr+"]") {
			t.Errorf("over TCP from %s: %+v, want the address, its failed logins counted per /64", a, o)
		}
	}

	sock := serveOrigin(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	got, err := getOrigin(sock)
	if err != nil {
		t.Fatal(err)
	}
	want := "addr=" + u.Username + " (uid " + strconv.Itoa(os.Getuid()) + ")"
	if !strings.Contains(got, want) || strings.Contains(got, "6.6.6.6") || strings.Contains(got, "127.0.0.1") {
		t.Errorf("over the socket: %q, want %q (the peer's credentials) and nothing of X-Forwarded-For", got, want)
	}

	// Over ssh: `moorage dial-stdio` runs in the ssh session.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MOORAGE_ORIGIN_HELPER_SOCK="+sock,
		"SSH_CONNECTION=198.51.100.7 51234 10.0.0.1 22", "MOORAGE_SSH_USER=carol")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "over ssh as carol from 198.51.100.7") || strings.Contains(string(out), "6.6.6.6") {
		t.Errorf("over ssh: %s\nwant the ssh client (carol from 198.51.100.7), nothing of X-Forwarded-For", out)
	}
	if !strings.Contains(string(out), "key=uid "+strconv.Itoa(os.Getuid())+" ssh 198.51.100.7 carol|") {
		t.Errorf("over ssh: %s\nwant failed logins counted per ssh client", out)
	}
	if strings.Contains(got, "key=uid "+strconv.Itoa(os.Getuid())+" ssh") {
		t.Errorf("the local peer shares the ssh client's limit: %q", got)
	}
}
