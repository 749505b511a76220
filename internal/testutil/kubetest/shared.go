package kubetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared is the test binary's one cluster (Shared), started by the first
// test that asks for it and stopped by Main after the last.
var shared struct {
	mu      sync.Mutex
	main    bool // Main runs this test binary
	started bool
	c       *Cluster
	err     error
}

// Main runs the tests of a package whose tests share a cluster (Shared),
// then stops that cluster; its result is the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
// A cluster starts in about 5 s on 2 cores (docs/kubernetes-fixture.md),
// and only one runs on a machine at a time: tests that can share one
// should, each in namespaces of its own.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		if err := shared.c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: stop the shared cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.c = nil
	}
	return code
}

// Shared returns the test binary's cluster, started on the first call
// (the binaries and the machine's lock waited for as by Start) and
// stopped by Main once every test has run: the package's TestMain must
// call Main. Tests that use it must not depend on what others leave
// there: each uses namespaces (and cluster-wide names) of its own. Like
// Start it skips the test when the machine cannot run a cluster, or fails
// it under MOORAGE_REQUIRE_DOCKER=1; a cluster that failed to start fails
// every test that asks for it.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if err := Requirements(); err != nil {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but a Kubernetes cluster cannot run here: %v", err)
		}
		t.Skipf("no Kubernetes cluster here: %v", err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("kubetest.Shared needs the package's TestMain to call kubetest.Main (which stops the cluster)")
	}
	if !shared.started {
		shared.started = true
		shared.c, shared.err = startShared(t)
	}
	if shared.err != nil {
		t.Fatalf("kubetest: the shared cluster: %v", shared.err)
	}
	c := shared.c
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(t.Logf, 40)
		}
	})
	return c
}

func startShared(t testing.TB) (*Cluster, error) {
	ctx := context.Background()
	bin, err := Binaries(ctx, t.Logf)
	if err != nil {
		return nil, err
	}
	c, err := StartCluster(ctx, bin, t.Logf)
	if c != nil {
		// The cluster outlives the test that started it: its later
		// messages go to the test binary's stderr.
		c.logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	if err != nil {
		if c != nil {
			c.logTails(t.Logf, 40)
			_ = c.Stop()
		}
		return nil, err
	}
	return c, nil
}
