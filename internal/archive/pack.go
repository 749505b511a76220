package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Stats describes a packed upload.
type Stats struct {
	Files int
	Bytes int64
}

// Pack writes dir as a gzip-compressed tar stream to w, skipping what ig
// ignores. Regular files, directories and symlinks are kept (with their
// permission bits); other file types are an error.
func Pack(dir string, ig *Ignore, w io.Writer) (Stats, error) {
	return PackWith(dir, w, PackOptions{Ignore: ig})
}

// PackOptions tune PackWith.
type PackOptions struct {
	Ignore *Ignore // nil: keep everything
	// KeepOwner keeps numeric owners (volume backups); uploads drop them.
	KeepOwner bool
	// SkipSpecial skips sockets, pipes and devices (reporting each to
	// Skipped) instead of failing.
	SkipSpecial bool
	Skipped     func(rel string)
	// Extra are files added to the stream (name → content, mode 0644)
	// in place of any file of that name in dir: `moorage deploy -f`
	// uploads the spec it wrote from the compose files this way.
	Extra map[string][]byte
}

// PackWith is Pack with options.
func PackWith(dir string, w io.Writer, o PackOptions) (Stats, error) {
	var st Stats
	ig := o.Ignore
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if _, ok := o.Extra[rel]; ok && !d.IsDir() {
			return nil
		}
		if ig != nil && ig.Match(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		case o.SkipSpecial:
			if o.Skipped != nil {
				o.Skipped(rel)
			}
			return nil
		default:
			return fmt.Errorf("%s: cannot upload a %s; add it to .moorageignore", rel, info.Mode().Type())
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		if !o.KeepOwner {
			hdr.Uid, hdr.Gid = 0, 0
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("pack %s: %w", rel, err)
			}
			st.Bytes += n
		}
		st.Files++
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, name := range sortedKeys(o.Extra) {
		data := o.Extra[name]
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return st, err
		}
		if _, err := tw.Write(data); err != nil {
			return st, err
		}
		st.Files++
		st.Bytes += int64(len(data))
	}
	if err := tw.Close(); err != nil {
		return st, err
	}
	return st, zw.Close()
}

// Limits bound what Unpack accepts.
type Limits struct {
	MaxBytes int64 // total size of files
	MaxFiles int
}

// ErrUnsafe is returned for an entry that would escape the directory or is
// of a type uploads may not contain.
var ErrUnsafe = errors.New("unsafe upload entry")

// ErrTooLarge is returned when an upload exceeds its limits.
var ErrTooLarge = errors.New("upload too large")

// Unpack extracts a stream written by Pack into dir (which must exist).
// Entries are confined to dir with os.Root: no absolute paths, no "..", and
// no writing through a symlink that points outside.
func Unpack(r io.Reader, dir string, lim Limits) (Stats, error) {
	return UnpackWith(r, dir, lim, false)
}

// UnpackWith is Unpack that, with chown, also restores numeric owners
// (volume restores, as root).
func UnpackWith(r io.Reader, dir string, lim Limits, chown bool) (Stats, error) {
	var st Stats
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, err
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return st, fmt.Errorf("read upload: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, fmt.Errorf("read upload: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if !filepath.IsLocal(name) {
			return st, fmt.Errorf("%w: %q", ErrUnsafe, hdr.Name)
		}
		st.Files++
		if lim.MaxFiles > 0 && st.Files > lim.MaxFiles {
			return st, fmt.Errorf("%w: more than %d files", ErrTooLarge, lim.MaxFiles)
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			if d := filepath.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
				}
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o200)
			if err != nil {
				return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
			}
			budget := int64(-1)
			if lim.MaxBytes > 0 {
				budget = lim.MaxBytes - st.Bytes
			}
			var n int64
			if budget >= 0 {
				n, err = io.Copy(f, io.LimitReader(tr, budget+1))
				if err == nil && n > budget {
					err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
				}
			} else {
				n, err = io.Copy(f, tr)
			}
			st.Bytes += n
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if d := filepath.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
				}
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
			}
		default:
			return st, fmt.Errorf("%w: %q has type %q", ErrUnsafe, hdr.Name, string(hdr.Typeflag))
		}
		if chown {
			if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
				return st, fmt.Errorf("unpack %s: %w", hdr.Name, err)
			}
		}
	}
	return st, nil
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
