package runtime

import (
	"reflect"
	"testing"
)

func TestExpandAndRefs(t *testing.T) {
	argv := []string{"app", "--key=$SECRET_KEY", "${DATABASE_URL}", "$$NOT_THIS", "$PORT$PORT", "awk", "{print $$1}"}
	env := map[string]string{"SECRET_KEY": "k", "DATABASE_URL": "u", "PORT": "80", "NOT_THIS": "x"}
	if got, want := Expand(argv, env), []string{"app", "--key=k", "u", "$NOT_THIS", "8080", "awk", "{print $1}"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Expand: %q, want %q", got, want)
	}
	if got, want := Refs(argv), []string{"SECRET_KEY", "DATABASE_URL", "PORT"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Refs: %q, want %q", got, want)
	}
}
