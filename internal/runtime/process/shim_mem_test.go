//go:build linux

package process

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestShimRuntimeSettings: a shim runs on one processor, without heap
// profiling, and with the instance's environment kept off its own (its
// memory per instance, docs/benchmarks.md). It logs the shim's memory
// (smaps_rollup; the shim is this test binary here, not moorage's).
func TestShimRuntimeSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.spec("web", "exec sleep 1000")
	f.start(s)
	st := f.state(s.ID())
	b, err := os.ReadFile("/proc/" + strconv.Itoa(st.ShimPID) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	if env["GOMAXPROCS"] != "1" || !strings.Contains(env["GODEBUG"], "memprofilerate=0") {
		t.Errorf("the shim's environment: GOMAXPROCS=%q GODEBUG=%q", env["GOMAXPROCS"], env["GODEBUG"])
	}
	if _, ok := env["PORT"]; ok {
		t.Errorf("the instance's environment reached the shim's own: %v", env)
	}
	if r, err := os.ReadFile("/proc/" + strconv.Itoa(st.ShimPID) + "/smaps_rollup"); err == nil {
		for _, l := range strings.Split(string(r), "\n") {
			if strings.HasPrefix(l, "Rss:") || strings.HasPrefix(l, "Pss") || strings.HasPrefix(l, "Anonymous:") {
				t.Log(strings.Join(strings.Fields(l), " "))
			}
		}
	}
}
