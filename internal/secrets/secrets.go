// Package secrets seals config values set with `moorage config set
// --secret` so the store never holds them in the clear.
//
// Values are sealed with AES-256-GCM (the standard library) under a 32-byte
// key kept in a file of mode 0600 in the data dir, created at first start.
// The app and the variable name are bound to each sealed value as
// additional data, so a sealed value copied to another key or app does not
// open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Sentinel errors.
var (
	ErrKey    = errors.New("bad secrets key")
	ErrSealed = errors.New("sealed value does not open")
)

const (
	keySize = 32
	version = 1
)

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
}

// LoadOrCreate reads the key at path, creating it (mode 0600, written
// atomically) if it does not exist. A key file readable by others is
// refused.
func LoadOrCreate(path string) (*Box, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, keySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := writeKey(path, key); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read secrets key: %w", err)
	} else {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%w: %s has mode %o; it must be readable by its owner only (chmod 600 %s)", ErrKey, path, fi.Mode().Perm(), path)
		}
	}
	return New(key)
}

// New returns a box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKey, len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

func writeKey(path string, key []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".secrets-key-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("create secrets key: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func aad(app, name string) []byte { return []byte("moorage-secret\x00" + app + "\x00" + name) }

// Seal encrypts value for variable name of app.
func (b *Box) Seal(app, name string, value []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), 1+b.aead.NonceSize()+len(value)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, value, aad(app, name)), nil
}

// Open decrypts a value sealed for variable name of app. Its error never
// contains the value.
func (b *Box) Open(app, name string, sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrSealed
	}
	v, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad(app, name))
	if err != nil {
		return nil, ErrSealed
	}
	return v, nil
}
