package apiserver

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestCheckRepoURL(t *testing.T) {
	cases := []struct {
		repo    string
		ssh     bool
		wantErr string
	}{
		{"https://github.com/acme/shop.git", false, ""},
		{"git://127.0.0.1:9418/hello", false, ""},
		{"ssh://git@github.com/acme/shop.git", true, ""},
		{"ssh://git@127.0.0.1:2222/srv/git/shop.git", true, ""},
		{"git@github.com:acme/shop.git", true, ""},
		{"github.com:acme/shop.git", true, ""},
		{"https://token:x-oauth@github.com/acme/shop.git", false, "holds credentials"},
		{"ssh://git:hunter2@github.com/acme/shop.git", false, "holds a password"},
		{"ftp://example.com/shop.git", false, "use the repository's clone URL"},
		{"/srv/git/shop.git", false, "not a clone URL"},
		{"", false, "not a clone URL"},
	}
	for _, c := range cases {
		got, err := checkRepoURL(c.repo)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: %v, want an error with %q", c.repo, err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") || err != nil && strings.Contains(err.Error(), "x-oauth") {
				t.Errorf("%q: the error shows the credential: %v", c.repo, err)
			}
			continue
		}
		if err != nil || got != c.ssh {
			t.Errorf("%q: ssh=%v %v, want ssh=%v", c.repo, got, err, c.ssh)
		}
	}
	for repo, host := range map[string]string{
		"git@github.com:acme/shop.git":              "github.com",
		"ssh://git@127.0.0.1:2222/srv/git/shop.git": "127.0.0.1:2222",
		"https://github.com/acme/shop.git":          "github.com",
	} {
		if got := repoHost(repo); got != host {
			t.Errorf("repoHost(%q) = %q, want %q", repo, got, host)
		}
	}
}

// The deploy key is a real ed25519 key pair: the private half parses as
// ssh reads it, and the public line is its public key, named for the app.
func TestNewDeployKey(t *testing.T) {
	priv, pub, err := newDeployKey("shop")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	if pk.Type() != "ssh-ed25519" || string(pk.Marshal()) != string(signer.PublicKey().Marshal()) || comment != "moorage-shop" {
		t.Fatalf("public line %q does not match the private key (comment %q)", pub, comment)
	}
}
