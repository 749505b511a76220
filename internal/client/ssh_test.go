package client

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSSH(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sshTarget
		args []string
	}{
		{"ssh://example.com", sshTarget{host: "example.com"}, []string{"-T", "--", "example.com", "moorage dial-stdio"}},
		{"ssh://deploy@example.com:2222/", sshTarget{user: "deploy", host: "example.com", port: "2222"},
			[]string{"-T", "-p", "2222", "--", "deploy@example.com", "moorage dial-stdio"}},
		{"ssh://root@10.0.0.5/var/lib/moorage/moorage.sock", sshTarget{user: "root", host: "10.0.0.5", socket: "/var/lib/moorage/moorage.sock"},
			[]string{"-T", "--", "root@10.0.0.5", "moorage dial-stdio --socket /var/lib/moorage/moorage.sock"}},
		{"ssh://[::1]:22/srv/my%20data/moorage.sock", sshTarget{host: "::1", port: "22", socket: "/srv/my data/moorage.sock"},
			[]string{"-T", "-p", "22", "--", "::1", "moorage dial-stdio --socket '/srv/my data/moorage.sock'"}},
	} {
		got, err := parseSSH(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.in, got, tc.want)
		}
		if args := got.sshArgs("moorage"); !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s: ssh %q, want %q", tc.in, args, tc.args)
		}
	}
	for in, want := range map[string]string{
		"ssh://":                 "no host",
		"ssh:host":               "two slashes",
		"ssh://u:secret@host":    "passwords",
		"ssh://host:99999":       "port",
		"ssh://host:":            "empty port",
		"ssh://-oProxyCommand=x": "cannot start with '-'",
		"ssh://host/sock?x=1":    "query",
		"ssh://host:22:33/x":     "",
		"ssh://host/sock#frag":   "fragment",
	} {
		_, err := parseSSH(in)
		if err == nil || !errors.Is(err, ErrBadHost) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ssh://[user@]host") {
			t.Errorf("%s: %v, want an ErrBadHost about %q", in, err, want)
		}
		if strings.Contains(in, "secret") && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/moorage/moorage.sock": "/var/lib/moorage/moorage.sock",
		"/a b/c":                        "'/a b/c'",
		"/it's":                         `'/it'\''s'`,
		"/x;rm -rf /":                   "'/x;rm -rf /'",
		"$HOME/s":                       "'$HOME/s'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A failing ssh (here a shell standing in for it) becomes an error that
// says what ssh said and what to do.
func TestSSHFailureHints(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   []string
	}{
		{`echo "bash: line 1: moorage: command not found" >&2; exit 127`, []string{"status 127", "moorage: command not found", "--remote-bin"}},
		{`echo "Warning: something" >&2; echo "root@h: Permission denied (publickey)." >&2; exit 255`, []string{"status 255", "Permission denied (publickey).", "authorized_keys"}},
		{`echo "Host key verification failed." >&2; exit 255`, []string{"Host key verification failed.", "ssh -p 2222 deploy@h"}},
		{`echo "error: cannot reach the moorage server at unix:///x.sock: connect: no such file or directory (is it running?)" >&2; exit 1`,
			[]string{"status 1: cannot reach the moorage server at unix:///x.sock"}},
	} {
		c, err := NewWith(Options{Host: "ssh://deploy@h:2222/x.sock", SSHCommand: "sh -c '" + strings.ReplaceAll(tc.script, "'", `'\''`) + "' --"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = c.Version(ctx)
		cancel()
		c.Close()
		t.Log(err)
		var se *SSHError
		if !errors.Is(err, ErrUnreachable) || !errors.As(err, &se) {
			t.Errorf("%s: %v, want ErrUnreachable and an *SSHError", tc.script, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n%v\nhas no %q", tc.script, err, w)
			}
		}
	}
	// A missing ssh is not a missing remote moorage.
	c, err := NewWith(Options{Host: "ssh://h", SSHCommand: "/no/such/ssh"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Version(context.Background()); err == nil || !strings.Contains(err.Error(), "/no/such/ssh") || strings.Contains(err.Error(), "--remote-bin") {
		t.Errorf("missing ssh command: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	c2, err := NewWith(Options{Host: "ssh://h"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Version(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot run ssh") || !strings.Contains(err.Error(), "install OpenSSH") {
		t.Errorf("no ssh: %v", err)
	}
}

func TestBadHost(t *testing.T) {
	_, err := New("tcp://host:1234")
	if !errors.Is(err, ErrBadHost) || !strings.Contains(err.Error(), "ssh://") {
		t.Fatalf("%v", err)
	}
}
