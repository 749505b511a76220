// Package reglogin keeps container registries' logins (`moorage registry
// login`): the user name in the store, the password sealed with the
// server's secrets key, bound to its host (a sealed password moved to
// another host's row does not open). Runtimes ask for the login of the one
// host they push to or pull from (Lookup), so a registry never receives
// another's credentials.
package reglogin

import (
	"context"
	"errors"
	"fmt"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/store"
)

// Sealer seals and opens passwords (internal/secrets.Box).
type Sealer interface {
	Seal(app, name string, value []byte) ([]byte, error)
	Open(app, name string, sealed []byte) ([]byte, error)
}

// Logins are the server's registry logins.
type Logins struct {
	Store  *store.Store
	Sealer Sealer
}

// sealName is the name a password is sealed under: bound to its host.
func sealName(host string) string { return "registry-login:" + host }

// Seal seals a password for host.
func Seal(s Sealer, host, password string) ([]byte, error) {
	if s == nil {
		return nil, errors.New("no secrets key is loaded: registry logins cannot be stored")
	}
	return s.Seal("", sealName(host), []byte(password))
}

// Open opens host's sealed password. Its error never contains it.
func Open(s Sealer, host string, sealed []byte) (string, error) {
	if s == nil {
		return "", errors.New("no secrets key is loaded")
	}
	b, err := s.Open("", sealName(host), sealed)
	if err != nil {
		return "", fmt.Errorf("the login for %s does not open with this server's secrets key (was the data dir's secrets.key replaced?): run `moorage registry login %s` again", host, host)
	}
	return string(b), nil
}

// Set validates and stores a login (host already resolved), replacing
// any for the same host.
func (l *Logins) Set(ctx context.Context, req api.RegistryLoginRequest) (*store.RegistryLogin, error) {
	if req.Host == "" {
		return nil, errors.New("no registry host")
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	sealed, err := Seal(l.Sealer, req.Host, req.Password)
	if err != nil {
		return nil, err
	}
	if err := l.Store.SetRegistryLogin(ctx, store.RegistryLogin{Host: req.Host, Username: req.Username, Password: sealed}); err != nil {
		return nil, err
	}
	return l.Store.GetRegistryLogin(ctx, req.Host)
}

// Remove forgets host's login (store.ErrNotFound when none).
func (l *Logins) Remove(ctx context.Context, host string) error {
	h, err := api.RegistryHost(host)
	if err != nil {
		return err
	}
	return l.Store.RemoveRegistryLogin(ctx, h)
}

// List returns the logins, passwords still sealed.
func (l *Logins) List(ctx context.Context) ([]*store.RegistryLogin, error) {
	return l.Store.ListRegistryLogins(ctx)
}

// Lookup returns the user name and password of host's login; ok is false
// when there is none. It is what the runtimes call, with the host of the
// image they push or pull, and nothing else.
func (l *Logins) Lookup(ctx context.Context, host string) (username, password string, ok bool, err error) {
	if l == nil || l.Store == nil {
		return "", "", false, nil
	}
	rec, err := l.Store.GetRegistryLogin(ctx, host)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	pw, err := Open(l.Sealer, host, rec.Password)
	if err != nil {
		return "", "", false, err
	}
	return rec.Username, pw, true, nil
}
