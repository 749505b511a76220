package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
)

// An app stays on its active release's runtime: a deploy moves it only
// with --runtime or when the spec's own runtime changed.
func TestChooseRuntime(t *testing.T) {
	const processYAML = "app: hello\nruntime: process\nservices:\n  web: {command: ./hello web}\nvolumes:\n  data: {mount: /app/data}\n"
	const dockerYAML = "app: hello\nruntime: docker\nservices:\n  web: {command: ./hello web}\nvolumes:\n  data: {mount: /app/data}\n"
	parse := func(yaml, rt string) *spec.Spec {
		t.Helper()
		sp, err := spec.ParseFor("moorage.yaml", []byte(yaml), rt)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	req := func(yaml, flag string) RuntimeRequest {
		return RuntimeRequest{Spec: parse(yaml, flag), SpecYAML: yaml, Runtime: flag}
	}
	active := func(yaml, rt string) *DeployedRelease {
		return &DeployedRelease{App: "hello", ID: "v3", Runtime: rt, Spec: parse(yaml, rt), SpecYAML: yaml}
	}
	cases := []struct {
		name       string
		req        RuntimeRequest
		active     *DeployedRelease
		want, from string
		note       string
	}{
		{"first deploy: the spec's", req(processYAML, ""), nil, "process", "", ""},
		{"first deploy: the flag's", req(processYAML, "docker"), nil, "docker", "", ""},
		{"moved with --runtime, the same spec again: stays", req(processYAML, ""), active(processYAML, "docker"), "docker", "",
			"runtime docker, the one v3 runs on (the spec says process; deploy with --runtime process to move the app)"},
		{"--runtime moves it back", req(processYAML, "process"), active(processYAML, "docker"), "process", "docker", ""},
		{"--runtime of its own runtime", req(processYAML, "docker"), active(processYAML, "docker"), "docker", "", ""},
		{"the spec's runtime changed: moves", req(dockerYAML, ""), active(processYAML, "process"), "docker", "process",
			"the spec's runtime changed from process (v3) to docker"},
		{"same runtime", req(dockerYAML, ""), active(dockerYAML, "docker"), "docker", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ChooseRuntime(c.req, c.active)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != c.want || got.From != c.from || got.Note != c.note || got.Spec.Runtime != c.want {
				t.Errorf("got %s (from %q, spec %s, note %q), want %s (from %q, note %q)", got.Name, got.From, got.Spec.Runtime, got.Note, c.want, c.from, c.note)
			}
		})
	}
	// Kept on docker, the spec is parsed for docker: its defaults apply.
	got, _ := ChooseRuntime(req(processYAML, ""), active(processYAML, "docker"))
	if got.Spec.Services["web"].Port != spec.DefaultDockerPort || got.Spec.Build.Dockerfile != "Dockerfile" {
		t.Errorf("spec kept on docker without docker defaults: port %d, dockerfile %q", got.Spec.Services["web"].Port, got.Spec.Build.Dockerfile)
	}

	// Accessories cannot move: refused, saying why and what to do.
	withDB := strings.Replace(processYAML, "volumes:", "accessories:\n  db: {image: postgres:16, command: ./db, port: 5432}\nvolumes:", 1)
	_, err := ChooseRuntime(req(withDB, "docker"), active(withDB, "process"))
	if !errors.Is(err, ErrRuntimeSwitch) || !strings.Contains(err.Error(), "accessories (db)") || !strings.Contains(err.Error(), "deploy without --runtime") {
		t.Errorf("moving an app with accessories: %v", err)
	}
}
