package api

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DockerHub is the host name of Docker Hub's registry, as logins and image
// references know it ("docker.io", "index.docker.io" and
// "registry-1.docker.io" all name it).
const DockerHub = "docker.io"

// RegistryLogin describes a registry's login without its password.
type RegistryLogin struct {
	Host     string    `json:"host"`
	Username string    `json:"username"`
	Created  time.Time `json:"created"`
	// Used says the host is the server's --swarm-registry: release images
	// are pushed there with this login, and the nodes pull with it.
	Used bool `json:"used,omitempty"`
}

// RegistryLogins is what `moorage registry ls` shows: the logins, and the
// registry the server pushes release images to ("" when none).
type RegistryLogins struct {
	Registry string          `json:"registry,omitempty"`
	Logins   []RegistryLogin `json:"logins"`
}

// RegistryLoginRequest is what `moorage registry login` sends. Host ""
// is the server's --swarm-registry host. The password is never answered
// back, logged or recorded.
type RegistryLoginRequest struct {
	Host     string `json:"host"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Validate checks a login request and normalizes its host (a non-empty
// one).
func (r *RegistryLoginRequest) Validate() error {
	if r.Host != "" {
		h, err := RegistryHost(r.Host)
		if err != nil {
			return err
		}
		r.Host = h
	}
	if r.Username == "" {
		return errors.New("a user name is needed: -u USER")
	}
	if strings.ContainsAny(r.Username, "\r\n") {
		return errors.New("the user name must be one line")
	}
	if r.Password == "" {
		return errors.New("the password is empty: give it on standard input (--password-stdin) or at the prompt")
	}
	return nil
}

// RegistryHost normalizes the host a login is for: "host[:port]", lower
// case, without a scheme, a path or a trailing slash; Docker Hub's names
// become "docker.io". "https://registry.example.com/" is
// "registry.example.com"; a path ("registry.example.com/team") is refused,
// since a login is for a whole registry.
func RegistryHost(s string) (string, error) {
	h := strings.TrimSpace(s)
	for _, p := range []string{"https://", "http://"} {
		if len(h) >= len(p) && strings.EqualFold(h[:len(p)], p) {
			h = h[len(p):]
		}
	}
	h = strings.ToLower(strings.TrimRight(h, "/"))
	if h == "index.docker.io/v1" {
		h = "index.docker.io"
	}
	if h == "" {
		return "", errors.New("no registry host: give HOST[:PORT], e.g. registry.example.com or 10.0.0.1:5000")
	}
	if strings.Contains(h, "/") {
		return "", fmt.Errorf("registry host %q has a path: a login is for a whole registry, give only HOST[:PORT] (%s)", s, h[:strings.Index(h, "/")])
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return "", fmt.Errorf("registry host %q: %q is not allowed in a host name; give HOST[:PORT]", s, c)
		}
	}
	switch h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		h = DockerHub
	}
	return h, nil
}

// RegistryHostOf is the registry host of an image reference or of a
// registry setting ("registry.example.com:5000/team/app@sha256:..." is
// "registry.example.com:5000"), as Docker reads it: the first component
// is a host when it has a dot or a colon or is "localhost", else the image
// is on Docker Hub. An image ID ("sha256:...") has none: "".
func RegistryHostOf(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "sha256:") {
		return ""
	}
	first, _, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return DockerHub
	}
	h, err := RegistryHost(first)
	if err != nil {
		return ""
	}
	return h
}
