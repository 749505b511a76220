package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestEnvValueRefs: $NAME in env values either names a variable moorage
// sets for those instances, or the spec is refused naming the key.
func TestEnvValueRefs(t *testing.T) {
	const base = "app: a\nvolumes:\n  data: {mount: /app/data, services: [web]}\n  all: {mount: /app/all}\n" +
		"accessories:\n  db:\n    command: postgres -D $MOORAGE_VOLUME_PGDATA\n    port: 5432\n    volumes: [\"pgdata:/var/lib/pg\"]\n"
	ok := []struct{ name, yaml string }{
		{"service volume", base + "services:\n  web: {command: ./run, env: {D: $MOORAGE_VOLUME_DATA, P: \"127.0.0.1:${PORT}\"}}\n  worker: {command: ./w}\n"},
		{"app env: volume of every service", base + "env: {ALL: $MOORAGE_VOLUME_ALL/x, R: $MOORAGE_RELEASE, A: \"$MOORAGE_APP-$MOORAGE_INSTANCE\"}\nservices:\n  web: {command: ./run}\n"},
		{"accessory volume", base + "services:\n  web: {command: ./run}\n"},
		{"accessory address", base + "services:\n  web: {command: ./run, env: {DB: \"postgres://u@${MOORAGE_ACCESSORY_DB_ADDR}/x\"}}\n"},
		{"escaped and plain dollars", base + "services:\n  web: {command: ./run, env: {PW: \"pa$$word\", COST: \"5 $\", PATHISH: \"a$/b\"}}\n"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if tt.name == "accessory volume" {
				y = strings.Replace(y, "accessories:\n  db:\n", "accessories:\n  db:\n    env: {PGDATA: $MOORAGE_VOLUME_PGDATA/main}\n", 1)
			}
			if _, err := Parse("moorage.yaml", []byte(y)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	bad := []struct{ name, yaml, path, text string }{
		{"unknown variable", base + "services:\n  web: {command: ./run, env: {D: $HOME/x}}\n",
			"services.web.env.D", "$HOME would be taken literally: moorage expands only its own variables in env values (for service web: $PORT, $MOORAGE_APP, $MOORAGE_SERVICE, $MOORAGE_INSTANCE, $MOORAGE_RELEASE, $MOORAGE_VOLUME_ALL, $MOORAGE_VOLUME_DATA, $MOORAGE_ACCESSORY_<NAME>_HOST/_PORT/_ADDR); write $$ for a literal $"},
		{"volume the accessory does not mount", base + "services:\n  web: {command: ./run}\n",
			"accessories.db.env.D", "$MOORAGE_VOLUME_DATA would be taken literally: it is not a volume accessory db mounts"},
		{"volume another service mounts", base + "services:\n  web: {command: ./run}\n  worker: {command: ./w, env: {D: \"${MOORAGE_VOLUME_DATA}\"}}\n",
			"services.worker.env.D", "$MOORAGE_VOLUME_DATA would be taken literally: it is not a volume service worker mounts"},
		{"app env: volume of one service", base + "env: {D: $MOORAGE_VOLUME_DATA}\nservices:\n  web: {command: ./run}\n  worker: {command: ./w}\n",
			"env.D", "it is not a volume every instance mounts"},
		{"accessory release", base + "services:\n  web: {command: ./run}\n",
			"accessories.db.env.R", "$MOORAGE_RELEASE would be taken literally: accessories outlive releases"},
		{"unclosed brace", base + "services:\n  web: {command: ./run, env: {D: \"${PORT\"}}\n",
			"services.web.env.D", "${PORT has no closing }; write $$ for a literal $"},
		{"special parameter", base + "services:\n  web: {command: ./run, env: {D: \"a$1\"}}\n",
			"services.web.env.D", "$1 is a shell special parameter"},
		{"docker worker without port", "app: a\nruntime: docker\nimage: x\nservices:\n  worker: {env: {P: $PORT}}\n",
			"services.worker.env.P", "$PORT would be taken literally: the instances that get this env have no port"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			switch tt.name {
			case "volume the accessory does not mount":
				y = strings.Replace(y, "accessories:\n  db:\n", "accessories:\n  db:\n    env: {D: $MOORAGE_VOLUME_DATA}\n", 1)
			case "accessory release":
				y = strings.Replace(y, "accessories:\n  db:\n", "accessories:\n  db:\n    env: {R: $MOORAGE_RELEASE}\n", 1)
			}
			_, err := Parse("moorage.yaml", []byte(y))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse = %v; want an error at %s", err, tt.path)
			}
			if len(list) != 1 || list[0].Path != tt.path || !strings.Contains(list[0].Msg, tt.text) {
				t.Fatalf("Parse errors:\n%v\nwant one at %s containing %q", err, tt.path, tt.text)
			}
		})
	}
}
