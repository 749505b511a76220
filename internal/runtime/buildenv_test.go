package runtime

import (
	"reflect"
	"testing"
)

func TestBuildEnv(t *testing.T) {
	server := []string{
		"PATH=/usr/bin", "HOME=/root", "GOCACHE=/cache", "LC_ALL=C.UTF-8",
		"MOORAGE_ACME_FALLBACK_EAB_HMAC=hmac-secret", "AWS_SECRET_ACCESS_KEY=aws-secret",
		"NODE_AUTH_TOKEN=npm-secret", "EXTRA_ONE=1", "EXTRA_TWO=2",
		"MOORAGE_BUILD_ENV=EXTRA_ONE, EXTRA_TWO",
	}
	got := BuildEnv(server, map[string]string{"DJANGO_SETTINGS_MODULE": "shop.settings", "PATH": "/app/bin:/usr/bin"}, "shop", "v3")
	want := map[string]string{
		"PATH": "/app/bin:/usr/bin", "HOME": "/root", "GOCACHE": "/cache", "LC_ALL": "C.UTF-8",
		"EXTRA_ONE": "1", "EXTRA_TWO": "2",
		"DJANGO_SETTINGS_MODULE": "shop.settings", "MOORAGE_APP": "shop", "MOORAGE_RELEASE": "v3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
