package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/moorage/moorage/internal/spec"
)

// FuzzLoad feeds arbitrary compose files to the entry point: it must never
// panic, and whatever it accepts must be a spec that parses again.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/docker-compose*.y*ml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("services: {web: {image: a, ports: ['80:8080'], x-moorage: {singleton: true}}}"))
	f.Add([]byte("services: {a: {image: x, depends_on: {b: {condition: service_completed_successfully}}}, b: {image: x}}"))
	f.Add([]byte("x-moorage: {hosts: [a.example.com], tls: auto}\nservices: {web: {image: a, expose: ['3000'], x-moorage: {http: {}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "docker-compose.yml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Load(context.Background(), Options{Files: []string{p}, Env: []string{}, App: "fuzz"})
		if err != nil {
			return
		}
		if res.Spec == nil || len(res.Services) == 0 {
			t.Fatalf("accepted without a spec or services: %+v", res)
		}
		if _, err := spec.Parse(SpecName, res.YAML); err != nil {
			t.Fatalf("written spec does not parse: %v\n%s", err, res.YAML)
		}
	})
}
