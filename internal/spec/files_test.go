package spec

import (
	"strings"
	"testing"
)

// A service's files are directories of the upload; release tasks get
// every service's, each path once.
func TestServiceFiles(t *testing.T) {
	sp, err := Parse("moorage.yaml", []byte(`app: media
runtime: docker
image: app:1
services:
  web:
    files: ["./custom:/app/custom", "./conf/nginx:/etc/app"]
  worker:
    files: ["./custom:/app/custom"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := sp.FilesFor("web"); len(got) != 2 || got[0] != (VolumeMount{Name: "./custom", Path: "/app/custom"}) || got[1].Name != "./conf/nginx" {
		t.Errorf("web's files: %+v", got)
	}
	if got := sp.FilesFor(""); len(got) != 2 {
		t.Errorf("every service's files, each path once: %+v", got)
	}
	for _, c := range []struct{ files, want string }{
		{`["/srv/custom:/app/custom"]`, "must be a directory of the app's upload"},
		{`["./../x:/app/custom"]`, "must be a directory of the app's upload"},
		{`["./custom:app"]`, "must mount at an absolute path"},
		{`["./custom:/data"]`, "/data is mounted twice"},
	} {
		_, err := Parse("moorage.yaml", []byte(`app: media
runtime: docker
image: app:1
volumes: {data: {mount: /data}}
services:
  web:
    files: `+c.files+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("files: %s: %v, want %q", c.files, err, c.want)
		}
	}
	_, err = Parse("moorage.yaml", []byte(`app: media
runtime: docker
image: app:1
services:
  web: {files: ["./a:/app/x"]}
  worker: {files: ["./b:/app/x"]}
`))
	if err == nil || !strings.Contains(err.Error(), "services.worker.files[0]: mounts ./b at /app/x, where service web mounts ./a") {
		t.Errorf("two directories at one path: %v", err)
	}
}
