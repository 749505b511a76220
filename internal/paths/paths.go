// Package paths knows where moorage keeps things by default.
package paths

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// DefaultDataDir is /var/lib/moorage as root, else $XDG_DATA_HOME/moorage
// (~/.local/share/moorage).
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/moorage"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "moorage")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "moorage")
	}
	return filepath.Join(home, ".local", "share", "moorage")
}

// maxSocketPath is the longest unix socket path Linux accepts (108 bytes
// with the terminating NUL).
const maxSocketPath = 107

// Socket is the control socket of a data dir: DATA/moorage.sock, or, when
// that path is too long for a unix socket, a short path under the temp dir
// derived from it (so client and server agree without configuration).
func Socket(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	p := filepath.Join(abs, "moorage.sock")
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "moorage-"+hex.EncodeToString(sum[:8])+".sock")
}
