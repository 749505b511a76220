package api_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestClientsImportNoServerInternals keeps the wire types' boundary: the
// API's wire types, the client and the CLI import none of the server's
// internals directly (nor any package under them). What a client sees is
// the API; the server converts its own types to the wire's
// (internal/apiserver, internal/query). The CLI reaches the daemon's
// certificates through internal/server.
func TestClientsImportNoServerInternals(t *testing.T) {
	const internal = "github.com/moorage/moorage/internal/"
	forbidden := []string{"engine", "runtime", "certs", "store"}
	// Every non-test .go file, whatever its build constraints.
	ctx := build.Default
	ctx.UseAllFiles = true
	for _, dir := range []string{".", "../client", "../cli"} {
		p, err := ctx.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(p.GoFiles) == 0 {
			t.Fatalf("%s: no Go files", dir)
		}
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if pkg := internal + f; imp == pkg || strings.HasPrefix(imp, pkg+"/") {
					t.Errorf("package %s imports %s", p.Name, imp)
				}
			}
		}
	}
}
