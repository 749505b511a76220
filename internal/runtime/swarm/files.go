package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/moorage/moorage/internal/fsutil"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
)

// A "./dir" host path (a service's files:, an accessory's ./conf volume)
// is a directory of the app's upload. The docker runtime keeps a copy of
// it with each release and bind-mounts the copy; a swarm task may run on
// any node, and no node has that copy. So each file of the copy becomes a
// Swarm config (Swarm stores it in its Raft log, hands it to whichever
// node runs a task, and the node mounts it read-only as a file), and the
// directory itself is a tmpfs of the task's container, which hides what
// the image had there, as the docker runtime's bind mount does:
//
//	./custom:/app/custom            ->  tmpfs /app/custom (the directory's mode)
//	  custom/static/site.css  0644  ->  config <prefix>-<app>-<hash> at /app/custom/static/site.css, mode 0644
//	  custom/empty/           0755  ->  tmpfs /app/custom/empty, read-only
//	  custom/__init__.py      empty ->  /dev/null at /app/custom/__init__.py, read-only
//
// Configs are named by the app and a hash of the file's content and mode,
// not by release: a deploy that changes no file makes no config, and a
// rollback finds its release's configs. They are made when a release is
// built (and made again when a task needs one that is gone), and removed
// once no kept release has such a file and no service refers to them
// (sweepConfigs, when a release's artifact is removed and at each build,
// as the docker runtime sweeps its copies).
//
// Swarm refuses an empty config, so an empty file is the node's
// /dev/null, bind-mounted read-only: it reads as empty (it is a character
// device, not a regular file). Swarm refuses configs of 1000 KiB or
// more, so a file that big, a
// symbolic link or a special file fails the build, before anything
// changes, naming the file; so do more than maxFiles files or
// maxFilesBytes in all.

// Limits of the "./dir" files of a release on swarm.
const (
	// maxConfigSize is Swarm's limit: a config's data must be shorter,
	// and not empty (swarmkit's MaxConfigSize: a 20.10.24 manager says
	// "config data must be larger than 0 and less than 1024000 bytes";
	// Docker's documentation still says 500 KB, the limit of managers
	// older than that, which refuse such a config when the build makes
	// it, before anything changes).
	maxConfigSize = 1000 * 1024
	// maxFiles bounds the files and empty directories of a release: each
	// is a mount in every task's container, and a file is a config every
	// manager keeps in its Raft log.
	maxFiles = 1000
	// maxFilesBytes bounds their size in all: every manager keeps every
	// config in memory and in each of its Raft snapshots.
	maxFilesBytes = 10 << 20
)

// ErrFilesDoNotFit is returned for "./dir" files Swarm configs cannot
// carry (a file too big, too many files, a link or a special file).
var ErrFilesDoNotFit = errors.New("does not fit in Swarm configs")

// labelFileSum is a config's label: the SHA-256 of its data, in hex.
const labelFileSum = "moorage.sha256"

// fileEntry is a file or a directory of a "./dir" tree.
type fileEntry struct {
	// Rel is the slash-separated path inside the tree; "" for its root.
	Rel  string
	Dir  bool
	Mode fs.FileMode // permission bits
	// Empty: a directory with no entries.
	Empty bool
	Size  int64
	Sum   string // SHA-256 of a file's content, hex
}

// fitAdvice says what to do with files that do not fit.
const fitAdvice = "put them in the image instead (COPY in the Dockerfile), or in a volume"

// walkFiles reads the tree at root, a directory or a regular file, that
// the user knows as name ("./custom"): its directories (each marked empty
// or not) and its regular files with their sizes and hashes, in lexical
// order. A symbolic link, a special file or a file of maxConfigSize or
// more is an error naming it.
func walkFiles(root, name string) ([]fileEntry, error) {
	var out []fileEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		shown := name
		if rel == "." {
			rel = ""
		} else {
			shown = strings.TrimSuffix(name, "/") + "/" + rel
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			out = append(out, fileEntry{Rel: rel, Dir: true, Mode: info.Mode().Perm(), Empty: len(ents) == 0})
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: on the swarm runtime each file of a ./dir mount becomes a Swarm config, which holds a regular file only; replace the link by the file, or %s: %w", shown, fitAdvice, ErrFilesDoNotFit)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file (%s): on the swarm runtime each file of a ./dir mount becomes a Swarm config, which holds a regular file only; %s: %w", shown, info.Mode().Type(), fitAdvice, ErrFilesDoNotFit)
		case info.Size() >= maxConfigSize:
			return fmt.Errorf("%s is %s: on the swarm runtime each file of a ./dir mount becomes a Swarm config, and a Swarm config holds less than %s; %s: %w", shown, fsutil.HumanBytes(info.Size()), fsutil.HumanBytes(maxConfigSize), fitAdvice, ErrFilesDoNotFit)
		}
		sum, err := hashFile(p)
		if err != nil {
			return err
		}
		out = append(out, fileEntry{Rel: rel, Mode: info.Mode().Perm(), Size: info.Size(), Sum: sum})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// filesBudget counts the files of a release against maxFiles and
// maxFilesBytes.
type filesBudget struct {
	n     int
	bytes int64
	names []string
}

// add counts the entries of the tree name.
func (b *filesBudget) add(name string, es []fileEntry) error {
	b.names = append(b.names, name)
	for _, e := range es {
		if e.Dir && !e.Empty {
			continue
		}
		b.n++
		b.bytes += e.Size
	}
	what := strings.Join(b.names, ", ")
	if b.n > maxFiles {
		return fmt.Errorf("%s: more than %d files and empty directories: on the swarm runtime each becomes a Swarm config or a mount in every container; %s: %w", what, maxFiles, fitAdvice, ErrFilesDoNotFit)
	}
	if b.bytes > maxFilesBytes {
		return fmt.Errorf("%s: %s in all, more than %s: on the swarm runtime each file becomes a Swarm config, and every manager keeps them all in memory and in its Raft log; %s: %w", what, fsutil.HumanBytes(b.bytes), fsutil.HumanBytes(maxFilesBytes), fitAdvice, ErrFilesDoNotFit)
	}
	return nil
}

// checkFiles checks that the "./dir" host paths (relative, cleaned,
// sorted: containers.LocalPaths) of the upload at root fit in Swarm
// configs. A path that is not in the upload is left for the build to
// report.
func checkFiles(root string, paths []string) error {
	var b filesBudget
	done := []string{}
	for _, rel := range paths {
		inside := false
		for _, d := range done {
			if containers.Within(rel, d) {
				inside = true
			}
		}
		if inside {
			continue
		}
		done = append(done, rel)
		p := filepath.Join(root, rel)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		es, err := walkFiles(p, "./"+filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if err := b.add("./"+filepath.ToSlash(rel), es); err != nil {
			return err
		}
	}
	return nil
}

// configName is the name of the config that holds a file of app with
// this content and mode: Swarm names are at most 64 characters, so the
// app's name is left out when it would not fit (the labels still say).
// The mode is part of the identity: a node writes a config once per
// container, in the mode of its reference.
func configName(prefix, app string, e fileEntry) string {
	h := sha256.Sum256([]byte(app + "\x00" + fmt.Sprintf("%04o", e.Mode) + "\x00" + e.Sum))
	sum := hex.EncodeToString(h[:])
	name := prefix + "-" + app + "-" + sum[:20]
	if len(name) > 64 {
		name = prefix + "-" + sum[:64-len(prefix)-1]
	}
	return name
}

// filesMount is a "./dir" mount of an instance, read from the copy kept
// with its release.
type filesMount struct {
	Name    string // "./custom"
	Root    string // the copy on this machine
	Target  string // in the container
	Entries []fileEntry
}

// taskFiles is what the task template gets for mounts: config references
// and tmpfs mounts. ids maps config names to IDs.
func taskFiles(prefix, app string, ms []filesMount, ids map[string]string) ([]*swarm.ConfigReference, []mount.Mount, error) {
	var refs []*swarm.ConfigReference
	var mounts []mount.Mount
	for _, m := range ms {
		for _, e := range m.Entries {
			target := path.Join(m.Target, e.Rel)
			switch {
			case e.Dir && e.Rel == "":
				// The directory: a tmpfs that hides what the image has
				// there. Writable unless it is empty, since the mount
				// points of what is mounted in it are made in it.
				mounts = append(mounts, mount.Mount{Type: mount.TypeTmpfs, Target: target, ReadOnly: e.Empty, TmpfsOptions: &mount.TmpfsOptions{Mode: e.Mode}})
			case e.Dir && e.Empty:
				mounts = append(mounts, mount.Mount{Type: mount.TypeTmpfs, Target: target, ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{Mode: e.Mode}})
			case e.Dir:
				// Made by the container runtime, as the parent of what is
				// mounted in it.
			case e.Size == 0:
				// Swarm refuses an empty config: the node's /dev/null
				// reads as the empty file.
				mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: os.DevNull, Target: target, ReadOnly: true})
			default:
				name := configName(prefix, app, e)
				id := ids[name]
				if id == "" {
					return nil, nil, fmt.Errorf("%s: no swarm config %s for %s", m.Name, name, path.Join(m.Name, e.Rel))
				}
				refs = append(refs, &swarm.ConfigReference{
					File:     &swarm.ConfigReferenceFileTarget{Name: target, UID: "0", GID: "0", Mode: e.Mode},
					ConfigID: id, ConfigName: name,
				})
			}
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].File.Name < refs[j].File.Name })
	return refs, mounts, nil
}

// fileMounts reads the "./dir" mounts of s from the copy kept with its
// release (nil when it has none).
func (r *Runtime) fileMounts(s *runtime.InstanceSpec) ([]filesMount, error) {
	var out []filesMount
	for _, m := range s.Mounts {
		if !strings.HasPrefix(m.Name, "./") {
			continue
		}
		rel := filepath.Clean(strings.TrimPrefix(m.Name, "./"))
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("host path %s leaves the app's directory: %w", m.Name, runtime.ErrInvalidSpec)
		}
		if s.Artifact.Files == "" {
			return nil, fmt.Errorf("host path %s: release %s of %s kept no files of its upload: %w", m.Name, s.Release, s.App, runtime.ErrInvalidSpec)
		}
		base, err := r.builder.FilesDir(s.Artifact.Files)
		if err != nil {
			return nil, err
		}
		root := filepath.Join(base, rel)
		if _, err := os.Lstat(root); err != nil {
			return nil, fmt.Errorf("host path %s was not in the upload of %s (looked in %s): %w", m.Name, s.App, base, runtime.ErrInvalidSpec)
		}
		es, err := walkFiles(root, m.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, filesMount{Name: m.Name, Root: root, Target: m.Target, Entries: es})
	}
	return out, nil
}
