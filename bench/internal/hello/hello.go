// Package hello is what the benchmarks share to run the example app on a
// moorage server of their own: the repository root, a copy of
// examples/hello, a free address, a server on a temporary data dir, and
// waiting for a condition.
package hello

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RepoRoot finds the moorage module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/moorage/moorage\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the moorage repository")
		}
		dir = parent
	}
}

// Copy copies the example app (not its build output or data) from src to
// dst; fast shortens its monitor window (5s → 1s) and its worker's
// min_ready (→ 1s).
func Copy(src, dst string, fast bool) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "hello" || rel == "data" || strings.HasPrefix(rel, ".moorage") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil || !fast {
		return err
	}
	p := filepath.Join(dst, "moorage.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	s := strings.Replace(string(b), "monitor: 5s", "monitor: 1s", 1)
	s = strings.Replace(s, "    command: ./hello worker\n", "    command: ./hello worker\n    min_ready: 1s\n", 1)
	return os.WriteFile(p, []byte(s), 0o644)
}

// TempDir makes a temporary directory for a benchmark's server and app,
// traversable by others (0711): a server running as root runs each app
// as a user of its own, which must reach the release under it.
func TempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		err = os.Chmod(dir, 0o711)
	}
	return dir, err
}

// FreeAddr returns a loopback address nothing listens on.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitFor calls fn every 100 ms until it returns nil or timeout passes,
// or fn's error wraps errGaveUp.
func WaitFor(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil || errors.Is(err, errGaveUp) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Build builds cmd/moorage from root into dir and returns its path.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "moorage")
	fmt.Fprintln(os.Stderr, "building moorage…")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/moorage")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build moorage: %w", err)
	}
	return bin, nil
}

// Server is a `moorage server` on a data dir of its own.
type Server struct {
	Bin     string
	Addr    string   // the proxy's plain HTTP address
	DataDir string   // under the directory Start was given
	Env     []string // the environment of a client of this server
	Prefix  string   // its --docker-prefix (a kubernetes server's namespaces are PREFIX-APP)
	cmd     *exec.Cmd
	exited  <-chan struct{} // closed once the server process has exited
	log     *os.File
}

// errGaveUp, from a WaitFor condition, ends the wait at once.
var errGaveUp = errors.New("gave up")

// Start starts bin's server with its data dir and log under dir, and
// waits until it answers; extra are more server flags.
func Start(bin, dir string, extra ...string) (*Server, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{Bin: bin, Addr: addr, DataDir: filepath.Join(dir, "data")}
	if s.log, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		return nil, err
	}
	// Its own docker prefix: containers of another server on the same
	// engine (another benchmark, a test) are never its to touch.
	s.Prefix = fmt.Sprintf("mb%x", time.Now().UnixNano()&0xffffff)
	s.cmd = exec.Command(bin, append([]string{"server", "--data-dir", s.DataDir, "--http", addr, "--https", "off", "--log-level", "info", "--docker-prefix", s.Prefix}, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.log.Close()
		return nil, err
	}
	s.Env = append(os.Environ(), "MOORAGE_HOST=unix://"+filepath.Join(s.DataDir, "moorage.sock"))
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	s.exited = exited
	err = WaitFor(2*time.Minute, func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(s.log.Name())
			return fmt.Errorf("%w: the server exited:\n%s", errGaveUp, b)
		default:
		}
		out, err := s.Command("version").CombinedOutput()
		if err == nil && strings.Contains(string(out), "server: moorage") {
			return nil
		}
		return fmt.Errorf("server not up: %v %s", err, out)
	})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Command is a moorage client command against s.
func (s *Server) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = s.Env
	return cmd
}

// Stop stops the server and kills what it left running under its data
// dir (instances outlive their server by design).
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	s.log.Close()
	KillInstances(s.DataDir)
}

// KillInstances kills the processes whose environment or command line
// names dataDir.
func KillInstances(dataDir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(env), dataDir) || strings.Contains(string(cmdline), dataDir) {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
}
