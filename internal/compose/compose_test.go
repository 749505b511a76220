package compose

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// render is what a golden file holds: what each service became, the
// warnings, then the spec; or the error.
func render(res *Result, err error) string {
	var b strings.Builder
	if err != nil {
		b.WriteString("error:\n" + err.Error() + "\n")
		return b.String()
	}
	for _, m := range res.Services {
		b.WriteString(m.String() + "\n")
	}
	for _, d := range res.Warnings {
		b.WriteString("warning: " + d.String() + "\n")
	}
	b.WriteString("---\n")
	b.Write(res.YAML)
	return b.String()
}

func TestComposeGolden(t *testing.T) {
	cases := []struct {
		name     string
		files    []string
		profiles []string
		env      []string
	}{
		{name: "mediacms", files: []string{"docker-compose.yaml"}},
		{name: "mediacms-https", files: []string{"docker-compose.yaml", "docker-compose.https.yaml"}},
		{name: "mediacms-nfs", files: []string{"docker-compose.yaml", "docker-compose.nfs.yaml"}},
		{name: "mediacms-image", files: []string{"docker-compose.yaml"}, env: []string{"IMAGE=registry.local:5000/mediacms:v9", "SECRET_KEY=from-env"}},
		{name: "django", files: []string{"docker-compose.yml"}},
		{name: "django-workers", files: []string{"docker-compose.yml"}, profiles: []string{"workers"}, env: []string{"PYTHON_VERSION=3.11"}},
		{name: "rails", files: []string{"docker-compose.yml"}},
		{name: "node", files: []string{"docker-compose.yml"}},
		{name: "node-prod", files: []string{"docker-compose.yml", "docker-compose.prod.yml"}},
		{name: "errors", files: []string{"docker-compose.yml"}},
		{name: "cycle", files: []string{"docker-compose.yml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", strings.SplitN(c.name, "-", 2)[0])
			var files []string
			for _, f := range c.files {
				files = append(files, filepath.Join(dir, f))
			}
			env := c.env
			if env == nil {
				env = []string{}
			}
			res, err := Load(context.Background(), Options{Files: files, Profiles: c.profiles, Env: env})
			got := render(res, err)
			golden := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/compose -run TestComposeGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("mapping of %s differs from %s (rerun with -update if the change is intended):\n--- got\n%s\n--- want\n%s", c.name, golden, got, want)
			}
		})
	}
}
