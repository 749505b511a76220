package proxy

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// staticName turns the part of a URL path under a static prefix into the
// name of a file in the directory, or reports that no file may answer it:
// empty names and directories (no listings), "." and ".." elements, dot
// files (.env, .git), backslashes and NUL bytes are refused. The result is
// a valid io/fs path; the os.Root it is opened in refuses any escape
// through symlinks on top.
func staticName(rest string) (string, bool) {
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" || strings.HasSuffix(rest, "/") || strings.ContainsAny(rest, "\\\x00") {
		return "", false
	}
	for elem := range strings.SplitSeq(rest, "/") {
		if elem == "" || elem[0] == '.' {
			return "", false
		}
	}
	if !fs.ValidPath(rest) {
		return "", false
	}
	return rest, true
}

// serveStatic answers r from the static directory of rt: GET and HEAD of
// regular files only, with range requests, conditional requests (ETag,
// Last-Modified) and a content type from the extension.
func serveStatic(a *attempt, r *http.Request, rt *route) {
	h := a.Header()
	h[headerRequestID] = []string{a.reqID}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writePage(a, http.StatusMethodNotAllowed, pageMethodNotAllowed, "")
		return
	}
	name, ok := staticName(r.URL.Path[len(rt.PathPrefix):])
	if !ok {
		writePage(a, http.StatusNotFound, pageStaticNotFound, "")
		return
	}
	root, err := os.OpenRoot(rt.staticDir)
	if err != nil {
		writePage(a, http.StatusNotFound, pageStaticNotFound, "")
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		status, page := http.StatusNotFound, pageStaticNotFound
		if errors.Is(err, fs.ErrPermission) {
			status, page = http.StatusForbidden, pageForbidden
		}
		writePage(a, status, page, "")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		writePage(a, http.StatusNotFound, pageStaticNotFound, "")
		return
	}
	h.Set("Etag", `"`+strconv.FormatInt(fi.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(fi.Size(), 36)+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(a, r, fi.Name(), fi.ModTime(), f)
}
