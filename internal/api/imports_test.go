package api_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/moorage/moorage/"

// forbidden are the server's internals a client must not reach: each
// package and every package under it.
var forbidden = []string{"internal/engine", "internal/runtime", "internal/certs", "internal/store", "internal/proxy"}

// TestClientsReachNoServerInternals keeps the wire types' boundary: the
// API's wire types, the client and the CLI reach none of the server's
// internals, directly or through another of moorage's packages. What a
// client sees is the API; the server converts its own types to the wire's
// (internal/apiserver, internal/query). The CLI runs the daemon through
// internal/daemon, with the constructor cmd/moorage passes it.
func TestClientsReachNoServerInternals(t *testing.T) {
	for _, start := range []string{"internal/api", "internal/client", "internal/cli"} {
		for _, chain := range reach(t, start) {
			t.Errorf("%s reaches %s: %s", start, chain[len(chain)-1], strings.Join(chain, " → "))
		}
	}
}

// TestReachFindsChains: the walk finds a package that reaches the
// server's internals only through another (the dashboard, through the
// API server), so that the test above can fail.
func TestReachFindsChains(t *testing.T) {
	for _, chain := range reach(t, "internal/dashboard") {
		if len(chain) > 2 && chain[len(chain)-1] == "internal/engine" {
			return
		}
	}
	t.Fatal("the dashboard reaches the engine (through the API server), but the walk did not find it")
}

// reach walks the imports of moorage's packages from start (non-test
// files, whatever their build constraints) and returns, for each
// forbidden package reached, the shortest chain of imports to it, from
// start: "internal/client", "internal/preflight", "internal/engine".
func reach(t *testing.T, start string) [][]string {
	t.Helper()
	ctx := build.Default
	ctx.UseAllFiles = true
	root := filepath.Join("..", "..") // the module's, from internal/api
	chains := map[string][]string{start: {start}}
	queue := []string{start}
	var out [][]string
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if isForbidden(pkg) {
			out = append(out, chains[pkg])
			continue
		}
		p, err := ctx.ImportDir(filepath.Join(root, filepath.FromSlash(pkg)), 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		if len(p.GoFiles) == 0 {
			t.Fatalf("%s: no Go files", pkg)
		}
		for _, imp := range p.Imports {
			rel, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if _, seen := chains[rel]; seen {
				continue
			}
			chains[rel] = append(append([]string(nil), chains[pkg]...), rel)
			queue = append(queue, rel)
		}
	}
	return out
}

func isForbidden(pkg string) bool {
	for _, f := range forbidden {
		if pkg == f || strings.HasPrefix(pkg, f+"/") {
			return true
		}
	}
	return false
}
