package containers

import (
	"errors"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// The "./dir" paths of a spec: services' files and accessories' host
// path volumes, cleaned, each once, sorted (a path inside another after
// it); a path that leaves the upload is an error.
func TestLocalPaths(t *testing.T) {
	sp := &spec.Spec{
		Services: map[string]*spec.Service{
			"web":    {Name: "web", Files: []spec.VolumeMount{{Name: "./custom", Path: "/app/custom"}}},
			"worker": {Name: "worker", Files: []spec.VolumeMount{{Name: "./custom/", Path: "/app/custom"}}},
		},
		Accessories: map[string]*spec.Accessory{
			"db": {Name: "db", Volumes: []spec.VolumeMount{{Name: "./custom/initdb", Path: "/docker-entrypoint-initdb.d"}, {Name: "pgdata", Path: "/var/lib/postgresql/data"}}},
			"mq": {Name: "mq", Volumes: []spec.VolumeMount{{Name: "./conf/mq.conf", Path: "/etc/mq.conf"}}},
		},
	}
	got, err := LocalPaths(sp)
	if err != nil || strings.Join(got, " ") != "conf/mq.conf custom custom/initdb" {
		t.Fatalf("LocalPaths = %q, %v", got, err)
	}
	if !Within("custom/initdb", "custom") || !Within("custom", "custom") || Within("custom-b", "custom") {
		t.Error("Within: a wrong verdict")
	}
	sp.Accessories["db"].Volumes[0].Name = "./../etc"
	if _, err := LocalPaths(sp); !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "accessory db: host path ./../etc leaves the app's directory") {
		t.Fatalf("a path out of the upload: %v", err)
	}
}
