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
	got, _ := BuildEnv(server, map[string]string{"DJANGO_SETTINGS_MODULE": "shop.settings", "PATH": "/app/bin:/usr/bin"}, "shop", "v3")
	want := map[string]string{
		"PATH": "/app/bin:/usr/bin", "HOME": "/root", "GOCACHE": "/cache", "LC_ALL": "C.UTF-8",
		"EXTRA_ONE": "1", "EXTRA_TWO": "2",
		"DJANGO_SETTINGS_MODULE": "shop.settings", "MOORAGE_APP": "shop", "MOORAGE_RELEASE": "v3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// The build expands the spec's $MOORAGE_APP and $MOORAGE_RELEASE in env
// values, leaves out values that need what a build does not have, and
// keeps config values (escaped by the engine) literal.
func TestBuildEnvExpands(t *testing.T) {
	app := Merge(map[string]string{
		"CACHE":  "/tmp/${MOORAGE_APP}-$MOORAGE_RELEASE",
		"LISTEN": "127.0.0.1:$PORT",
		"DATA":   "$MOORAGE_VOLUME_DATA/x",
		"PRICE":  "5 $$",
	}, EscapeEnv(map[string]string{"PASSWORD": "a$PORT$$b"}))
	got, left := BuildEnv(nil, app, "shop", "v3")
	want := map[string]string{"CACHE": "/tmp/shop-v3", "PRICE": "5 $", "PASSWORD": "a$PORT$$b", "MOORAGE_APP": "shop", "MOORAGE_RELEASE": "v3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BuildEnv = %q, want %q", got, want)
	}
	// What is left out is said, never silently dropped.
	wantLeft := []string{
		"DATA (refers to $MOORAGE_VOLUME_DATA, which only instances have)",
		"LISTEN (refers to $PORT, which only instances have)",
	}
	if !reflect.DeepEqual(left, wantLeft) {
		t.Errorf("left out %q, want %q", left, wantLeft)
	}
}
