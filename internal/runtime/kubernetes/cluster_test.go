package kubernetes

import (
	"os"
	"testing"

	"github.com/moorage/moorage/internal/testutil/kubetest"
)

// The package's cluster tests (*_cluster_test.go) share one kubetest
// cluster (kubetest.Shared), started by the first of them and stopped
// here once every test has run: one start (about 5 s) instead of one per
// test, and one cluster per machine at a time. Each test keeps to
// namespaces of its own.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
