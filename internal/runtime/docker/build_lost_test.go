package docker

import (
	"errors"
	"testing"
)

func TestLostCacheImage(t *testing.T) {
	// The message of Docker Engine 20.10's classic builder when an image
	// it took from the cache was removed before the step used it.
	lost := errors.New(`docker build: unable to find image "sha256:e368c3c6deffe10f9356c159746e38ac248829ce7cd03d541da53cf603edaf32"`)
	if !lostCacheImage(lost) {
		t.Errorf("lostCacheImage(%v) = false", lost)
	}
	for _, err := range []error{nil, errors.New(`docker build: unable to find image "busybox:latest" locally`), errors.New("docker build: COPY failed")} {
		if lostCacheImage(err) {
			t.Errorf("lostCacheImage(%v) = true", err)
		}
	}
}
