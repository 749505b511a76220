package cli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/moorage/moorage/internal/spec"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/init")

// TestInitGolden: `moorage init` recognises common layouts and writes a
// spec that parses without warnings, as in testdata/init/<layout>.yaml.
func TestInitGolden(t *testing.T) {
	layouts := map[string]map[string]string{
		"django-celery": {
			"manage.py":        "#!/usr/bin/env python\n",
			"shop/__init__.py": "from .celery import app as celery_app\n",
			"shop/settings.py": "INSTALLED_APPS = []\n",
			"shop/wsgi.py":     "application = None\n",
			"shop/celery.py":   "from celery import Celery\napp = Celery('shop')\n",
			"requirements.txt": "Django==3.2.19\ncelery[redis]>=5.2\nredis\npsycopg2-binary==2.9.6\ngunicorn\n",
		},
		"django-plain": {
			"manage.py":         "",
			"site1/settings.py": "",
			"site1/wsgi.py":     "",
			"requirements.txt":  "django\ngunicorn\n",
		},
		"rails-sidekiq": {
			"Gemfile":               "source 'https://rubygems.org'\ngem 'rails', '~> 7.1'\ngem 'pg', '~> 1.1'\ngem 'puma'\ngem 'sidekiq'\n",
			"config/application.rb": "module Shop; end\n",
		},
		"node": {
			"package.json": `{"name": "shop", "scripts": {"start": "node server.js"}}`,
		},
	}
	for name, files := range layouts {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for p, text := range files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := starterSpec(dir, "shop")
			sp, err := spec.Parse("moorage.yaml", []byte(got))
			if err != nil {
				t.Fatalf("the spec does not parse: %v\n%s", err, got)
			}
			if w := sp.Warnings(); len(w) > 0 {
				t.Errorf("the spec has warnings: %q", w)
			}
			golden := filepath.Join("testdata", "init", name+".yaml")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("init wrote:\n%s\nwant (%s; go test -run TestInitGolden -update to rewrite it):\n%s", got, golden, want)
			}
		})
	}
}
