package spec

import (
	"reflect"
	"strings"
	"testing"
)

// Placement and volume drivers, for the swarm runtime: read as written,
// checked for shape, and warned about where they have no effect.
func TestPlacement(t *testing.T) {
	src := `app: a
runtime: swarm
image: app:1
services:
  web:
    placement: {constraints: ["node.role == worker", node.labels.zone!=b], spread: node.labels.zone}
  beat: {singleton: true, placement: {constraints: [node.hostname==n3]}}
accessories:
  db: {image: postgres:16, port: 5432, volumes: ["pg:/var/lib/postgresql/data"], placement: {constraints: [node.labels.disk==ssd]}}
volumes:
  media: {mount: /app/media, driver: local, driver_opts: {type: nfs, o: "addr=10.0.0.5,rw", device: ":/export/media"}}
`
	s := mustParse(t, src)
	if got, want := s.Services["web"].Placement, (&Placement{Constraints: []string{"node.role == worker", "node.labels.zone!=b"}, Spread: "node.labels.zone"}); !reflect.DeepEqual(got, want) {
		t.Errorf("web placement %+v, want %+v", got, want)
	}
	if got := s.Accessories["db"].Placement; got == nil || got.Constraints[0] != "node.labels.disk==ssd" {
		t.Errorf("db placement %+v", got)
	}
	if v := s.Volumes["media"]; v.Driver != "local" || v.DriverOpts["type"] != "nfs" || v.DriverOpts["device"] != ":/export/media" {
		t.Errorf("media volume %+v", v)
	}
	eq(t, len(s.Warnings()), 0)
	if s.Services["web"].Port != DefaultDockerPort {
		t.Errorf("swarm web port %d, want docker's default %d", s.Services["web"].Port, DefaultDockerPort)
	}

	// Elsewhere placement does nothing, and says so.
	d := mustParse(t, strings.Replace(src, "runtime: swarm", "runtime: docker", 1))
	eq(t, d.Warnings(), []string{
		"services.beat.placement: ignored by the docker runtime: placement chooses among the nodes of a swarm",
		"services.web.placement: ignored by the docker runtime: placement chooses among the nodes of a swarm",
		"accessories.db.placement: ignored by the docker runtime: placement chooses among the nodes of a swarm",
	})
}

func TestPlacementErrors(t *testing.T) {
	for _, c := range []struct{ constraint, want string }{
		{"zone=a", `"zone=a" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, e.g. node.labels.zone==a`},
		{"node.zone==a", `unknown attribute "node.zone"`},
		{"node.labels.==a", `unknown attribute "node.labels."`},
		{"node.role==", `"node.role==" has no value after ==`},
	} {
		src := "app: a\nruntime: swarm\nimage: app:1\nservices:\n  web: {placement: {constraints: [\"" + c.constraint + "\"]}}\n"
		_, err := Parse("moorage.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "services.web.placement.constraints") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("constraint %q: %v, want an error naming the key with %q", c.constraint, err, c.want)
		}
	}
	_, err := Parse("moorage.yaml", []byte("app: a\nruntime: swarm\nimage: app:1\nservices:\n  web: {placement: {spread: zone}}\n"))
	if err == nil || !strings.Contains(err.Error(), "must name a node label") {
		t.Errorf("spread: zone: %v", err)
	}
}
