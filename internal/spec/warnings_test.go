package spec

import (
	"fmt"
	"testing"
)

// On the process runtime a volume linked into the (shared) release
// directory reaches every service: services: only picks who gets
// $MOORAGE_VOLUME_<NAME>, and the spec says so.
func TestVolumeServicesWarning(t *testing.T) {
	src := `app: a
runtime: %s
services:
  web: {command: ./web}
  worker: {command: ./worker}
volumes:
  media: {mount: /app/media, services: [web]}
  every: {mount: /app/every, services: [web, worker]}
  outside: {mount: /srv/outside, services: [worker]}
`
	s := mustParse(t, fmt.Sprintf(src, "process"))
	eq(t, s.Warnings(), []string{
		"volumes.media.services: on the process runtime it only decides which services get $MOORAGE_VOLUME_MEDIA: the volume is linked at /app/media in the release directory, which every service shares",
	})
	s = mustParse(t, fmt.Sprintf(src, "docker\nbuild: {dockerfile: Dockerfile}"))
	eq(t, len(s.Warnings()), 0)
}
