package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/moorage/moorage/internal/api"

	"github.com/moorage/moorage/internal/runtime"
)

// RuntimeHealth is one runtime's state as the server sees it now (internal/api).
type RuntimeHealth = api.RuntimeHealth

// RuntimesHealth asks every runtime to list what it runs (5 s at most
// each); runtimes that could not be opened say why.
func (e *Engine) RuntimesHealth(ctx context.Context) []RuntimeHealth {
	var out []RuntimeHealth
	for _, name := range sortedNames(e.runtimes) {
		rt := e.runtimes[name]
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ins, err := rt.List(c, runtime.Filter{})
		cancel()
		h := RuntimeHealth{Name: name, OK: err == nil, Instances: len(ins)}
		if err != nil {
			h.Error = err.Error()
		}
		out = append(out, h)
	}
	for name, why := range e.why {
		if _, ok := e.runtimes[name]; !ok {
			out = append(out, RuntimeHealth{Name: name, Error: fmt.Sprintf("not available: %v", why)})
		}
	}
	return out
}

func sortedNames(m map[string]runtime.Runtime) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
