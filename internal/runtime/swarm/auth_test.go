package swarm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// The auth is what the Docker API's X-Registry-Auth expects: base64url
// JSON of its auth config, which the SDK's decoder reads back.
func TestEncodeAuth(t *testing.T) {
	enc := encodeAuth("10.0.0.1:5000", "deployer", "p+/w=?&")
	b, err := base64.URLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("not base64url: %v", err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		t.Fatal(err)
	}
	if ac.Username != "deployer" || ac.Password != "p+/w=?&" || ac.ServerAddress != "10.0.0.1:5000" {
		t.Fatalf("decoded %+v", ac)
	}
	if strings.ContainsAny(enc, "+/") {
		t.Fatalf("%q is not URL-safe", enc)
	}
	b, _ = base64.URLEncoding.DecodeString(encodeAuth("docker.io", "u", "p"))
	json.Unmarshal(b, &ac)
	if ac.ServerAddress != "https://index.docker.io/v1/" {
		t.Fatalf("Docker Hub's server address: %q", ac.ServerAddress)
	}
}

// authFor asks for the login of the image's own host only, and pushes
// anonymously ("{}") without one.
func TestAuthFor(t *testing.T) {
	var asked []string
	r := &Runtime{opts: Options{Credentials: func(_ context.Context, host string) (string, string, bool, error) {
		asked = append(asked, host)
		if host == "reg.example.com:5000" {
			return "deployer", "hunter2", true, nil
		}
		return "", "", false, nil
	}}}
	ctx := context.Background()
	a, err := r.authFor(ctx, "reg.example.com:5000/team/hello@sha256:abc")
	if err != nil || a.username != "deployer" || a.encoded != encodeAuth("reg.example.com:5000", "deployer", "hunter2") || a.pushHeader() != a.encoded {
		t.Fatalf("authFor = %+v, %v", a, err)
	}
	for _, ref := range []string{"other.example.com/hello:v1", "postgres:16", "reg.example.com/hello"} {
		a, err := r.authFor(ctx, ref)
		if err != nil || a.encoded != "" || a.pushHeader() != anonymousAuth {
			t.Errorf("authFor(%s) = %+v, %v: want anonymous", ref, a, err)
		}
	}
	if a, _ := r.authFor(ctx, "sha256:0123"); a.encoded != "" {
		t.Errorf("an image ID got a login")
	}
	want := []string{"reg.example.com:5000", "other.example.com", "docker.io", "reg.example.com"}
	if strings.Join(asked, " ") != strings.Join(want, " ") {
		t.Fatalf("asked for %v, want %v", asked, want)
	}
	// No credentials source: anonymous.
	if a, err := (&Runtime{}).authFor(ctx, "reg.example.com:5000/x"); err != nil || a.encoded != "" {
		t.Fatalf("without Credentials: %+v, %v", a, err)
	}
}

// A refused push says what to run, and never carries the password or the
// encoded auth, even when the engine's error repeats them.
func TestPushError(t *testing.T) {
	anon := regAuth{host: "reg.example.com:5000"}
	err := anon.pushError("reg.example.com:5000/team/hello:v1", errors.New("unauthorized: authentication required"))
	if !strings.Contains(err.Error(), "moorage registry login reg.example.com:5000 -u USER --password-stdin") || !strings.Contains(err.Error(), "without credentials") {
		t.Fatalf("anonymous: %v", err)
	}
	enc := encodeAuth("reg.example.com:5000", "deployer", "hunter2")
	with := regAuth{host: "reg.example.com:5000", username: "deployer", encoded: enc, secrets: []string{"hunter2", enc}}
	err = with.pushError("t", errors.New("denied: requested access to the resource is denied (auth hunter2 "+enc+")"))
	if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, enc) || !strings.Contains(msg, "with the login of deployer") || !strings.Contains(msg, "moorage registry login reg.example.com:5000") {
		t.Fatalf("with a login: %v", msg)
	}
	err = anon.pushError("t", errors.New("dial tcp 10.0.0.1:5000: connection refused"))
	if !strings.Contains(err.Error(), "is it reachable") || strings.Contains(err.Error(), "registry login") {
		t.Fatalf("unreachable: %v", err)
	}
}
