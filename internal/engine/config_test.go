package engine

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

func vars(kv ...string) []store.ConfigVar {
	var out []store.ConfigVar
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		secret := strings.HasSuffix(k, "!")
		out = append(out, store.ConfigVar{Key: strings.TrimSuffix(k, "!"), Value: []byte(v), Secret: secret})
	}
	return out
}

func show(vs []store.ConfigVar) string {
	var parts []string
	for _, v := range vs {
		mark := ""
		if v.Secret {
			mark = "!"
		}
		parts = append(parts, fmt.Sprintf("%s%s=%s", v.Key, mark, v.Value))
	}
	return strings.Join(parts, " ")
}

func TestCheckChangeRefusesSecretDowngrades(t *testing.T) {
	have := vars("TOKEN!=sealed", "PLAIN=x")
	sp := &spec.Spec{Secrets: []string{"SECRET_KEY"}, Accessories: map[string]*spec.Accessory{
		"db": {Name: "db", Secrets: []string{"POSTGRES_PASSWORD"}}}}
	for _, tc := range []struct {
		name  string
		set   []store.ConfigVar
		unset []string
		sp    *spec.Spec
		want  string // "" = allowed
	}{
		{"plain over a secret", vars("TOKEN=v"), nil, nil, "TOKEN is a secret; set it with `moorage config set --secret TOKEN`, or, to make it a plain value, remove it first with `moorage config unset TOKEN`"},
		{"secret over a secret", vars("TOKEN!=v"), nil, nil, ""},
		{"secret over a plain value", vars("PLAIN!=v"), nil, nil, ""},
		{"plain over a plain value", vars("PLAIN=y"), nil, nil, ""},
		{"plain for a declared secret", vars("SECRET_KEY=v"), nil, sp, "moorage.yaml declares SECRET_KEY a secret; set it with `moorage config set --secret SECRET_KEY`"},
		{"plain for an accessory's secret", vars("POSTGRES_PASSWORD=v"), nil, sp, "declares POSTGRES_PASSWORD a secret"},
		{"secret for a declared secret", vars("SECRET_KEY!=v"), nil, sp, ""},
		{"unset a secret", nil, []string{"TOKEN"}, nil, ""},
		{"unset what is not set", nil, []string{"NOPE"}, nil, "NOPE is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkChange(have, tc.set, tc.unset, tc.sp)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			case strings.HasPrefix(tc.name, "plain ") && tc.want != "" && !errors.Is(err, ErrPlainSecret):
				t.Fatalf("%v is not ErrPlainSecret", err)
			}
			// Never a value in the message.
			if err != nil && strings.Contains(err.Error(), "sealed") {
				t.Fatalf("the error shows a value: %v", err)
			}
		})
	}
}

func TestCheckSecrets(t *testing.T) {
	sp := &spec.Spec{Secrets: []string{"A", "B"}, Accessories: map[string]*spec.Accessory{
		"db": {Name: "db", Secrets: []string{"C"}}}}
	missing, plain := checkSecrets(sp, vars("A!=1", "B=2"))
	if !reflect.DeepEqual(missing, []string{"C"}) || !reflect.DeepEqual(plain, []string{"B"}) {
		t.Fatalf("missing %q plain %q", missing, plain)
	}
	msg := secretsProblem(missing, plain)
	for _, want := range []string{"not set: C", "config set --secret C=", "set as plain values (shown by `moorage config`): B", "config set --secret B`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

func TestApplyChange(t *testing.T) {
	got := show(applyChange(vars("A=1", "B!=s", "C=3"), vars("B=plain", "D!=d"), []string{"B", "C"}))
	if want := "A=1 B=plain D!=d"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// configDiff turns the active release's config into the target's: it is
// what adoptConfig applies to the stored config when the target activates.
func TestConfigDiff(t *testing.T) {
	from := configOf(vars("A=1", "B=2", "S!=old", "GONE=x", "TURN!=s"))
	to := configOf(vars("A=1", "B=changed", "S!=new", "NEW=n", "TURN=p"))
	set, unset := configDiff(from, to)
	if got, want := show(set), "B=changed NEW=n S!=new TURN=p"; got != want {
		t.Errorf("set %s, want %s", got, want)
	}
	if !reflect.DeepEqual(unset, []string{"GONE"}) {
		t.Errorf("unset %q", unset)
	}
	// Applied to a store holding the from config plus a value staged
	// since (--no-deploy), it gives the target's config and keeps the
	// staged value.
	stored := applyChange(vars("A=1", "B=2", "S!=old", "GONE=x", "TURN!=s", "STAGED=1"), set, unset)
	if got, want := show(stored), "A=1 B=changed NEW=n S!=new STAGED=1 TURN=p"; got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
	if set, unset := configDiff(to, to); len(set)+len(unset) != 0 {
		t.Errorf("no change: %v %v", set, unset)
	}
}
