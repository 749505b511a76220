package client

import (
	"os"
	"path/filepath"
	"testing"
)

// A .dockerignore that lists moorage.yaml (to keep it out of images) does
// not keep it out of the upload: the deploy needs it.
func TestUploadIgnoreKeepsTheSpec(t *testing.T) {
	for _, tt := range []struct{ file, specFile, spec string }{
		{".dockerignore", "", "moorage.yaml"},
		{".moorageignore", "", "moorage.yaml"},
		{".dockerignore", "deploy/prod.yaml", "deploy/prod.yaml"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tt.file), []byte("*.yaml\ndeploy/*\nmoorage.yaml\n*.md\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ig, err := uploadIgnore(dir, tt.specFile)
		if err != nil {
			t.Fatal(err)
		}
		if ig.Match(tt.spec) {
			t.Errorf("%s listing the spec: %s is left out of the upload", tt.file, tt.spec)
		}
		if !ig.Match("README.md") || !ig.Match("other.yaml") {
			t.Errorf("%s: the other patterns no longer apply", tt.file)
		}
	}
}
