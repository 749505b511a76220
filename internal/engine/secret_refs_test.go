package engine

import (
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

func TestSecretRefs(t *testing.T) {
	rel := &store.Release{
		Spec: &spec.Spec{
			Secrets: []string{"SECRET_KEY"},
			Services: map[string]*spec.Service{
				"web":    {Name: "web", Command: spec.Command{"app", "--key", "$SECRET_KEY", "--port", "$PORT"}, HTTP: &spec.HTTP{}},
				"worker": {Name: "worker", Command: spec.Command{"sh", "-c", `exec worker --token "$$API_TOKEN"`}},
				"beat":   {Name: "beat", Command: spec.Command{"beat", "--db=${API_TOKEN}"}, Health: &spec.Health{Command: spec.Command{"check", "$SECRET_KEY"}}},
			},
			Release: []spec.Task{{Command: spec.Command{"migrate", "$PLAIN"}}},
			Accessories: map[string]*spec.Accessory{
				"db":    {Name: "db", Command: spec.Command{"db", "--password", "$DB_PASSWORD"}, Secrets: []string{"DB_PASSWORD"}},
				"cache": {Name: "cache", Command: spec.Command{"cache", "$SECRET_KEY"}}, // gets no secrets: expands to nothing
			},
		},
		Config: store.Config{Env: map[string]string{"PLAIN": "x"}, Secrets: map[string][]byte{"API_TOKEN": []byte("sealed"), "DB_PASSWORD": []byte("sealed")}},
	}
	got := secretRefs(rel)
	var where []string
	for _, w := range got {
		where = append(where, strings.SplitN(w, " passes the secret ", 2)[0]+" "+strings.SplitN(strings.SplitN(w, " passes the secret ", 2)[1], " as an", 2)[0])
	}
	want := []string{
		"services.web.command $SECRET_KEY",
		"services.beat.command $API_TOKEN",
		"services.beat.health.command $SECRET_KEY",
		"accessories.db.command $DB_PASSWORD",
	}
	if strings.Join(where, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(where, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(strings.Join(got, " "), "sealed") {
		t.Fatal("a warning shows a value")
	}
	if w := oneOffSecretRefs(rel, []string{"psql", "$API_TOKEN", "$PLAIN"}); !strings.Contains(w, "secret $API_TOKEN as an argument") || strings.Contains(w, "PLAIN") {
		t.Fatalf("one-off warning: %q", w)
	}
	if w := oneOffSecretRefs(rel, []string{"sh", "-c", "psql \"$$API_TOKEN\""}); w != "" {
		t.Fatalf("one-off warning for $$: %q", w)
	}
}
