package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "TOP-SECRET-OUTSIDE-THE-VOLUME"

// staticTree makes a volume directory with files, a subdirectory, a dot
// file, a symlink inside and symlinks pointing out, next to a secret file
// outside it. It returns the volume directory.
func staticTree(t testing.TB) string {
	t.Helper()
	base := t.TempDir()
	vol := filepath.Join(base, "media")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(vol, "img", "deep"), 0o755))
	must(os.WriteFile(filepath.Join(base, "secret.txt"), []byte(secret), 0o644))
	must(os.WriteFile(filepath.Join(vol, "hello.txt"), []byte("hello, static world\n"), 0o644))
	must(os.WriteFile(filepath.Join(vol, "img", "a.png"), []byte("\x89PNG fake"), 0o644))
	must(os.WriteFile(filepath.Join(vol, "img", "deep", "b.css"), []byte("body{}"), 0o644))
	must(os.WriteFile(filepath.Join(vol, ".env"), []byte("SECRET_KEY="+secret), 0o644))
	must(os.WriteFile(filepath.Join(vol, "index.html"), []byte("<p>index</p>"), 0o644))
	must(os.Symlink("hello.txt", filepath.Join(vol, "link-inside.txt")))
	must(os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(vol, "link-out.txt")))
	must(os.Symlink("../secret.txt", filepath.Join(vol, "img", "rel-out.txt")))
	must(os.Symlink(base, filepath.Join(vol, "dir-out")))
	return vol
}

func TestStatic(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	vol := staticTree(t)
	app := newBackend(t, "app")
	mustSetApp(t, p, "shop", RouteTargets{
		Route:   Route{Hosts: []string{"shop.test"}, Static: map[string]string{"/media/": vol}},
		Targets: targets(app),
	})
	c := srv.Client()
	do := func(method, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Host = "shop.test"
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	res, body := do("GET", "/media/hello.txt")
	if res.StatusCode != 200 || body != "hello, static world\n" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") ||
		res.Header.Get("Etag") == "" || res.Header.Get("Last-Modified") == "" || res.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("file: %d %q %v", res.StatusCode, body, res.Header)
	}
	etag, lastMod := res.Header.Get("Etag"), res.Header.Get("Last-Modified")
	if res, _ := do("GET", "/media/hello.txt", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", res.StatusCode)
	}
	if res, _ := do("GET", "/media/hello.txt", "If-Modified-Since", lastMod); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", res.StatusCode)
	}
	if res, body := do("GET", "/media/hello.txt", "Range", "bytes=7-12"); res.StatusCode != http.StatusPartialContent || body != "static" ||
		res.Header.Get("Content-Range") != "bytes 7-12/20" {
		t.Fatalf("range: %d %q %v", res.StatusCode, body, res.Header)
	}
	if res, body := do("HEAD", "/media/img/deep/b.css"); res.StatusCode != 200 || body != "" || res.ContentLength != 6 ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("HEAD: %d %q %d %v", res.StatusCode, body, res.ContentLength, res.Header)
	}
	if _, body := do("GET", "/media/link-inside.txt"); body != "hello, static world\n" {
		t.Fatalf("symlink inside the volume: %q", body)
	}
	if res, _ := do("POST", "/media/hello.txt"); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", res.StatusCode, res.Header)
	}
	// Everything else under the prefix is a 404: no listings, no dot files,
	// no way out; the app never sees these paths.
	for _, path := range []string{
		"/media", "/media/", "/media/img", "/media/img/", "/media/missing.txt", "/media/.env",
		"/media/link-out.txt", "/media/img/rel-out.txt", "/media/dir-out/secret.txt",
		"/media/img/../../secret.txt", "/media/%2e%2e/secret.txt", "/media/img/%2E%2E/%2e%2e/secret.txt",
		"/media/..%2fsecret.txt", "/media/img%2f..%2f..%2fsecret.txt", "/media/hello.txt%00", "/media/img\\..\\..\\secret.txt",
	} {
		res, body := do("GET", path)
		if res.StatusCode != 404 || strings.Contains(body, secret) || body == "app" {
			t.Errorf("GET %s: %d %q, want the 404 page", path, res.StatusCode, body)
		}
	}
	// Raw request targets, as an attacker sends them (clients clean paths).
	for _, target := range []string{"/media/../secret.txt", "/media/img/../../secret.txt", "/media/./../secret.txt", "/media//../secret.txt"} {
		conn, br := rawConn(t, srv)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n", target)
		res, err := http.ReadResponse(bufio.NewReader(br), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), secret) {
			t.Fatalf("raw %s leaked the secret", target)
		}
	}
	// The rest of the host still goes to the app.
	if _, body := do("GET", "/mediafile"); body != "app" {
		t.Fatalf("a path beside the prefix: %q", body)
	}
	if _, body := do("GET", "/"); body != "app" {
		t.Fatalf("the app: %q", body)
	}
}

func TestStaticRouteValidation(t *testing.T) {
	p, _ := newTestProxy(t, Options{})
	b := newBackend(t, "a1")
	for _, tc := range []struct {
		static map[string]string
		prefix string
		err    error
		msg    string
	}{
		{map[string]string{"/": "/srv"}, "", ErrInvalidRoute, "whole app"},
		{map[string]string{"media": "/srv"}, "", ErrInvalidRoute, "start with /"},
		{map[string]string{"/media/": "relative/dir"}, "", ErrInvalidRoute, "absolute"},
		{map[string]string{"/media/": "/srv", "/media": "/srv2"}, "", ErrHostConflict, "twice"},
		{map[string]string{"/api/": "/srv"}, "/api", ErrHostConflict, "twice"},
	} {
		err := p.SetApp("shop", []RouteTargets{{Route: Route{Hosts: []string{"s.test"}, PathPrefix: tc.prefix, Static: tc.static}, Targets: targets(b)}})
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want %v mentioning %q", tc.static, err, tc.err, tc.msg)
		}
	}
}

// FuzzStaticPath serves arbitrary request paths under a static prefix from
// a volume that has symlinks pointing out of it: whatever the path, the
// secret next to the volume never comes back, and any name staticName
// accepts is a clean relative path.
func FuzzStaticPath(f *testing.F) {
	for _, s := range []string{
		"hello.txt", "", "/", "..", "../secret.txt", "img/../../secret.txt", "./hello.txt", "img//a.png",
		"link-out.txt", "img/rel-out.txt", "dir-out/secret.txt", ".env", "img/.", "img/..", "\x00", "a\\..\\b",
		"hello.txt/", "%2e%2e/secret.txt", "img/deep/b.css", "…/secret.txt", strings.Repeat("a/", 200),
	} {
		f.Add(s)
	}
	vol := staticTree(f)
	rt := &route{Route: Route{PathPrefix: "/media"}, staticDir: vol}
	f.Fuzz(func(t *testing.T, rest string) {
		if name, ok := staticName(rest); ok {
			if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") || strings.Contains("/"+name+"/", "/./") ||
				strings.ContainsAny(name, "\\\x00") || strings.Contains("/"+name, "/.") {
				t.Fatalf("staticName(%q) = %q", rest, name)
			}
		}
		path := "/media/" + strings.TrimPrefix(rest, "/")
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		a := getAttempt(rec)
		serveStatic(a, req, rt)
		putAttempt(a)
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("GET %q leaked the secret: %d", path, rec.Code)
		}
		if rec.Code != 200 && rec.Code != 404 && rec.Code != 403 {
			t.Fatalf("GET %q: status %d", path, rec.Code)
		}
	})
}
