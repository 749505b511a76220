package swarm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/registry"

	"github.com/moorage/moorage/internal/api"
)

// Credentials returns the login of one registry host ("10.0.0.1:5000",
// "docker.io"): ok is false when there is none. The runtime asks only for
// the host of the image it pushes or a service pulls, so a registry never
// receives another's credentials.
type Credentials func(ctx context.Context, host string) (username, password string, ok bool, err error)

// anonymousAuth is X-Registry-Auth without credentials: base64 of "{}".
// A 20.10 engine refuses a push without the header.
const anonymousAuth = "e30="

// regAuth is the X-Registry-Auth of one registry host.
type regAuth struct {
	host     string
	username string // "" when anonymous
	encoded  string // "" when anonymous
	secrets  []string
}

// encodeAuth is the X-Registry-Auth value of a login: base64url JSON of
// the Docker API's registry auth config.
func encodeAuth(host, username, password string) string {
	addr := host
	if host == api.DockerHub {
		addr = "https://index.docker.io/v1/"
	}
	b, _ := json.Marshal(registry.AuthConfig{Username: username, Password: password, ServerAddress: addr})
	return base64.URLEncoding.EncodeToString(b)
}

// authFor returns the login for the registry of image ref (nothing for an
// image ID, or a host without a login).
func (r *Runtime) authFor(ctx context.Context, ref string) (regAuth, error) {
	a := regAuth{host: api.RegistryHostOf(ref)}
	if a.host == "" || r.opts.Credentials == nil {
		return a, nil
	}
	user, pw, ok, err := r.opts.Credentials(ctx, a.host)
	if err != nil {
		return a, fmt.Errorf("registry login for %s: %w", a.host, err)
	}
	if !ok {
		return a, nil
	}
	a.username, a.encoded = user, encodeAuth(a.host, user, pw)
	a.secrets = []string{pw, a.encoded}
	return a, nil
}

// pushHeader is the X-Registry-Auth of a push.
func (a regAuth) pushHeader() string {
	if a.encoded == "" {
		return anonymousAuth
	}
	return a.encoded
}

// scrub removes the login's password and encoded auth from an error, in
// case an engine or registry ever repeats them.
func (a regAuth) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := msg
	for _, s := range a.secrets {
		if s != "" {
			out = strings.ReplaceAll(out, s, "[redacted]")
		}
	}
	if out == msg {
		return err
	}
	return errors.New(out)
}

// refused reports whether a registry's error says the credentials were
// missing or wrong.
func refused(err error) bool {
	if err == nil {
		return false
	}
	m := strings.ToLower(err.Error())
	for _, s := range []string{"unauthorized", "authentication required", "no basic auth credentials", "denied", "401", "403 forbidden"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// pushError explains a push the registry refused, saying what to run.
func (a regAuth) pushError(tag string, err error) error {
	err = a.scrub(err)
	if !refused(err) {
		return fmt.Errorf("push %s to the registry (is it reachable from the manager, and does it accept pushes?): %w", tag, err)
	}
	if a.username == "" {
		return fmt.Errorf("the registry %s refused the push of %s without credentials (%w): log in to it with `moorage registry login %s -u USER --password-stdin`, then deploy again", a.host, tag, err, a.host)
	}
	return fmt.Errorf("the registry %s refused the push of %s with the login of %s (%w): check that user's rights there, or log in again with `moorage registry login %s -u USER --password-stdin`, then deploy again", a.host, tag, a.username, err, a.host)
}
