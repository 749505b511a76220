package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Repack turns an uncompressed tar stream whose entries sit under one top
// directory (the Docker API's archive of a path: "data/", "data/a",
// "data/sub/b") into what PackWith writes of that directory: a gzip tar
// of its entries relative to it, with the same options (KeepOwner,
// SkipSpecial and Skipped; Ignore and Extra are not used). Entries that
// would leave the directory, and hard links, are refused.
func Repack(r io.Reader, w io.Writer, o PackOptions) (Stats, error) {
	var st Stats
	tr := tar.NewReader(r)
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	top := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		first, rest, _ := strings.Cut(strings.TrimSuffix(name, "/"), "/")
		if top == "" {
			top = first
		}
		if first != top {
			return st, fmt.Errorf("%s: not under %s/: %w", hdr.Name, top, ErrUnsafe)
		}
		if rest == "" {
			continue // the directory itself
		}
		if c := path.Clean(rest); c != rest || c == ".." || strings.HasPrefix(c, "../") || path.IsAbs(c) {
			return st, fmt.Errorf("%s: %w", hdr.Name, ErrUnsafe)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			// Unpack (and so verify and restore) takes no hard links, and
			// the content of the file linked to has gone by.
			return st, fmt.Errorf("%s: a hard link (to %s), which a volume archive cannot hold yet", rest, hdr.Linkname)
		default:
			if o.SkipSpecial {
				if o.Skipped != nil {
					o.Skipped(rest)
				}
				continue
			}
			return st, fmt.Errorf("%s: cannot archive a file of type %q", rest, hdr.Typeflag)
		}
		hdr.Name = rest
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if !o.KeepOwner {
			hdr.Uid, hdr.Gid = 0, 0
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.PAXRecords = nil
		hdr.Format = tar.FormatUnknown
		if err := tw.WriteHeader(hdr); err != nil {
			return st, err
		}
		if hdr.Typeflag == tar.TypeReg {
			n, err := io.Copy(tw, tr)
			if err != nil {
				return st, fmt.Errorf("repack %s: %w", rest, err)
			}
			st.Bytes += n
		}
		st.Files++
	}
	if err := tw.Close(); err != nil {
		return st, err
	}
	return st, zw.Close()
}
