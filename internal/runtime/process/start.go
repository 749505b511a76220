//go:build linux

package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// defaultPath is the PATH of an instance when neither the server nor the
// spec has one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Start starts a supervised instance and returns once its process runs.
func (r *Runtime) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	id, unlock, err := r.ids.LockSpec(r.life.Check, &s, validateSpec)
	if err != nil {
		return runtime.Instance{}, err
	}
	defer unlock()

	dir := r.instanceDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return runtime.Instance{}, fmt.Errorf("start %s: %w", id, runtime.ErrExists)
		}
		return runtime.Instance{}, fmt.Errorf("start %s: %w", id, err)
	}
	r.mu.Lock()
	r.starting[id] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.starting, id)
		r.mu.Unlock()
	}()

	in, err := r.start(ctx, id, dir, &s)
	if err != nil {
		_ = os.RemoveAll(dir)
		_ = os.RemoveAll(r.accessoryFilesDir(id))
		_ = os.RemoveAll(filepath.Join(r.tmpRoot(), id))
		releasePorts(dir)
		return runtime.Instance{}, fmt.Errorf("start %s: %w", id, err)
	}
	return in, nil
}

// validateSpec is seam.ValidateSpec (no host paths) and what only a
// process needs: a command (there is no image default).
func validateSpec(s *runtime.InstanceSpec) error {
	if err := seam.ValidateSpec(s, false); err != nil {
		return err
	}
	if len(s.Command) == 0 || s.Command[0] == "" {
		return fmt.Errorf("%s: the process runtime needs a command: %w", s.ID(), runtime.ErrInvalidSpec)
	}
	return nil
}

// workdir returns the working directory of an instance or one-off: the
// release directory, or for accessories their own directory. With group
// >= 0 (app users, see appuser.go) the app's directory above it is made
// root's and group's, mode 0750, and a release not yet sealed for the
// group is (a release built before app users existed).
func (r *Runtime) workdir(s *runtime.InstanceSpec, group int) (string, error) {
	if s.Kind == runtime.KindAccessory {
		d := r.accessoryDir(s.App, s.Service)
		if err := appDir(filepath.Dir(d), group, 0o750); err != nil {
			return "", err
		}
		if err := os.MkdirAll(d, 0o750); err != nil {
			return "", err
		}
		return d, nil
	}
	if s.Artifact.Ref == "" {
		return "", fmt.Errorf("no artifact: %w", runtime.ErrInvalidSpec)
	}
	fi, err := os.Stat(s.Artifact.Ref)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("release directory %s: %w", s.Artifact.Ref, runtime.ErrArtifactGone)
	}
	if group >= 0 {
		if _, err := r.artifactDir(s.Artifact); err == nil {
			if err := appDir(filepath.Dir(s.Artifact.Ref), group, 0o750); err != nil {
				return "", err
			}
			if !sealed(s.Artifact.Ref, group) {
				if err := sealRelease(s.Artifact.Ref, group); err != nil {
					return "", err
				}
			}
		}
	}
	return s.Artifact.Ref, nil
}

// instanceEnv returns the environment of an instance: a base of the
// server's PATH, HOME, LANG and TZ, then s.Env, then PORT and the
// MOORAGE_* variables (and MOORAGE_APP_DIR, an accessory's files, when
// files is set). TMPDIR is tmp, the instance's own temporary directory
// (and HOME too for a user without a home). It creates the mounted volumes
// that do not exist, and gives them to cred's user.
func (r *Runtime) instanceEnv(s *runtime.InstanceSpec, port int, cred *credential, group int, files, tmp string) (map[string]string, error) {
	base := map[string]string{"PATH": defaultPath}
	for _, k := range []string{"PATH", "HOME", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			base[k] = v
		}
	}
	if tmp != "" {
		base["TMPDIR"] = tmp
	}
	if cred != nil {
		base["USER"], base["LOGNAME"] = cred.Name, cred.Name
		if cred.Home != "" && dirExists(cred.Home) {
			base["HOME"] = cred.Home
		} else if tmp != "" {
			base["HOME"] = tmp
		}
	}
	vols := map[string]string{}
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Name, "./") {
			continue // a directory of the upload: the release directory has it
		}
		d := r.volumeDir(s.App, m.Name)
		if err := appDir(filepath.Dir(d), group, 0o750); err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		if err := cred.handOver(d, group >= 0); err != nil {
			return nil, err
		}
		vols[runtime.VolumeEnv(m.Name)] = d
	}
	if files != "" {
		vols[runtime.AppDirEnv] = files
	}
	return runtime.Merge(base, runtime.InstanceEnv(s, port, vols)), nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// tmpDir creates the temporary directory of instance or one-off id, mode
// 0700, cred's (the server's when nil); a leftover is emptied first.
func (r *Runtime) tmpDir(id string, cred *credential) (string, error) {
	d := filepath.Join(r.tmpRoot(), id)
	if err := os.MkdirAll(filepath.Dir(d), 0o711); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Dir(d), 0o711); err != nil {
		return "", err
	}
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Lchown(d, int(cred.UID), int(cred.GID)); err != nil {
			_ = os.RemoveAll(d)
			return "", err
		}
	}
	return d, nil
}

// tmpRoot holds the instances' and one-offs' temporary directories.
// (Not under runtime/, which only the server may enter.)
func (r *Runtime) tmpRoot() string { return filepath.Join(r.opts.DataDir, "tmp") }

// accessoryFiles gives an accessory the files of the upload of the release
// that starts it: a copy of the release directory (hard links where the
// filesystem allows, so no space is used), owned by the server and so
// read-only to an accessory that runs as another user, kept while the
// instance exists whatever happens to the release, and removed with it.
// It returns "" when the accessory has no release directory.
func (r *Runtime) accessoryFiles(s *runtime.InstanceSpec, group int) (string, error) {
	if s.Artifact.Ref == "" {
		return "", nil
	}
	src := s.Artifact.Ref
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("release directory %s: %w", src, runtime.ErrArtifactGone)
	}
	dst := r.accessoryFilesDir(s.ID())
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o711); err != nil {
		return "", err
	}
	if err := fsutil.LinkTree(src, dst); err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("copy the app's files from %s: %w", src, err)
	}
	if group >= 0 {
		// The app's instances only (an explicit user has the app's group).
		if err := os.Lchown(dst, os.Geteuid(), group); err != nil {
			return "", err
		}
		if err := os.Chmod(dst, 0o750); err != nil {
			return "", err
		}
		return dst, nil
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		return "", err
	}
	return dst, nil
}

// accessoryFilesDir is where accessory id's copy of the app's files lives.
func (r *Runtime) accessoryFilesDir(id string) string {
	return filepath.Join(r.opts.DataDir, "accessory-files", id)
}

// command expands argv against env and resolves its program.
func command(argv []string, env map[string]string, dir string) (path string, args []string, err error) {
	args = runtime.Expand(argv, env)
	path, err = lookPath(args[0], env["PATH"], dir)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", err, runtime.ErrInvalidSpec)
	}
	return path, args, nil
}

func (r *Runtime) start(ctx context.Context, id, dir string, s *runtime.InstanceSpec) (runtime.Instance, error) {
	cred, group, err := r.credentialFor(s)
	if err != nil {
		return runtime.Instance{}, err
	}
	cwd, err := r.workdir(s, group)
	if err != nil {
		return runtime.Instance{}, err
	}
	if err := reachable(cwd, cred); err != nil {
		return runtime.Instance{}, err
	}
	// An accessory runs in its own directory (its data); a program named
	// with a relative path (./bin/postgres.sh) is the app's, from its
	// files ($MOORAGE_APP_DIR).
	progDir := cwd
	var files string
	if s.Kind == runtime.KindAccessory {
		if err := cred.handOver(cwd, group >= 0); err != nil {
			return runtime.Instance{}, err
		}
		if files, err = r.accessoryFiles(s, group); err != nil {
			return runtime.Instance{}, err
		}
		if files != "" {
			progDir = files
		}
	}
	port := s.Port
	if port == 0 {
		if port, err = pickPort(r.opts.PortMin, r.opts.PortMax, dir); err != nil {
			return runtime.Instance{}, err
		}
	} else {
		reservePort(port, dir)
	}
	tmp, err := r.tmpDir(id, cred)
	if err != nil {
		return runtime.Instance{}, fmt.Errorf("temporary directory: %w", err)
	}
	env, err := r.instanceEnv(s, port, cred, group, files, tmp)
	if err != nil {
		return runtime.Instance{}, err
	}
	path, args, err := command(s.Command, env, progDir)
	if err != nil {
		return runtime.Instance{}, err
	}
	rec := record{Spec: *s, Port: port, Dir: cwd, Log: seam.LogPath(r.opts.DataDir, s.App, id), Created: time.Now().UTC()}
	rec.Spec.Env = nil
	rec.Spec.Port = port
	if err := writeJSON(filepath.Join(dir, recordFile), &rec); err != nil {
		return runtime.Instance{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, eventsFile), nil, 0o600); err != nil {
		return runtime.Instance{}, err
	}
	sig := s.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	cfg := shimConfig{
		ID:           id,
		StateDir:     dir,
		Event:        eventFor(s),
		Path:         path,
		Args:         args,
		Env:          runtime.EnvList(env),
		Dir:          cwd,
		Port:         port,
		Credential:   cred.sys(),
		Log:          rec.Log,
		LogMaxSize:   r.opts.LogMaxSize,
		LogMaxFiles:  r.opts.LogMaxFiles,
		StopSignal:   sig,
		StopTimeout:  stopTimeout(s),
		StopGroup:    s.StopGroup,
		BackoffMin:   r.opts.BackoffMin,
		BackoffMax:   r.opts.BackoffMax,
		BackoffReset: r.opts.BackoffReset,
	}
	if err := r.launchShim(ctx, dir, &cfg); err != nil {
		return runtime.Instance{}, err
	}
	var st shimState
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return runtime.Instance{}, err
	}
	r.track(id, &st, 0)
	r.log.Debug("instance started", "instance", id, "pid", st.PID, "port", port)
	return r.instance(&rec, &st), nil
}

// launchShim starts the shim of an instance, hands it its configuration
// through a pipe and waits until it reports that the process runs.
func (r *Runtime) launchShim(ctx context.Context, dir string, cfg *shimConfig) error {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer cfgW.Close()
	resR, resW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return err
	}
	defer resR.Close()
	logf, err := os.OpenFile(filepath.Join(dir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		cfgR.Close()
		resW.Close()
		return err
	}
	cmd := &exec.Cmd{
		Path:        r.exe,
		Args:        []string{"moorage-shim", cfg.ID},
		Env:         shimEnviron(dir),
		Dir:         "/",
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{cfgR, resW}, // fds 3 and 4
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	cfgR.Close()
	resW.Close()
	logf.Close()
	if err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}

	go func() {
		_ = json.NewEncoder(cfgW).Encode(cfg)
		cfgW.Close()
	}()
	resc := make(chan shimResult, 1)
	go func() {
		var res shimResult
		if err := json.NewDecoder(resR).Decode(&res); err != nil {
			res.Error = "supervisor exited before starting the instance"
			if b, _ := os.ReadFile(filepath.Join(dir, shimLog)); len(b) > 0 {
				res.Error += ": " + strings.TrimSpace(string(b))
			}
		}
		resc <- res
	}()

	var res shimResult
	select {
	case res = <-resc:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		var st shimState
		if readJSON(filepath.Join(dir, stateFile), &st) == nil && st.PGID > 0 {
			killOrphans(st.PGID, st.ShimPID, st.PID, st.PIDStart, 5*time.Second)
		}
		return ctx.Err()
	}
	if res.Error != "" {
		_ = cmd.Wait()
		return errors.New(res.Error)
	}
	pid := cmd.Process.Pid
	ownShims.Store(pid, struct{}{})
	_ = cmd.Process.Release() // reaped by whoever sees it exit (shimExited)
	return nil
}

// shimEnviron is the shim's own environment: the marker and the few
// variables the Go runtime itself honours. The instance's environment
// reaches the shim through its config pipe only. A shim runs on one
// processor (it waits on its child, pipes and signals; one P instead of
// one per core saves its per-P caches) and without heap profiling (whose
// bucket table the binary's package initializers would otherwise start
// filling): about 1 MB less unshared memory per instance.
func shimEnviron(dir string) []string {
	env := []string{shimEnv + "=" + dir, "GOMAXPROCS=1"}
	godebug := "memprofilerate=0"
	for _, k := range []string{"GOTRACEBACK", "GORACE", "GOCOVERDIR", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			if k == "GODEBUG" {
				godebug = v + "," + godebug
				continue
			}
			env = append(env, k+"="+v)
		}
	}
	return append(env, "GODEBUG="+godebug)
}
