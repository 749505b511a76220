# The whole test suite: both Go modules (moorage and the example app), vet,
# and the end-to-end tests that drive the built binary.
GO ?= go

.PHONY: test deps vet build fuzz kube-build-bg

# Go tools the tests start (pebble) are installed here by scripts/test-deps.
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 60s

# Tests marked parallel that run at once in a package. The end-to-end tests
# spend most of their time waiting (health checks, drains, monitors), so
# more of them than cores keeps the suite well under CI's budget; each has
# its own server, ports and data dir. In the e2e package the swarm tests
# (TestSwarm, two lanes, one per cluster) take their slots first, so that
# the suite's longest path starts at once (e2e/gate_test.go).
# The timeout is a safety net under CI's hard limit, not the target
# (docs/benchmarks.md has the suite's time).
TEST_PARALLEL ?= 4

test: kube-build-bg deps vet
	pkgs=$$($(GO) list ./...) && \
	$(GO) test -count=1 -timeout 80m -parallel $(TEST_PARALLEL) $$(echo "$$pkgs" | grep -v -x -F $(KUBE_PKGS:./%=-e $(MODULE)/%)) $(KUBE_PKGS)
	cd examples/hello && $(GO) test -count=1 ./...

# The Kubernetes fixture's binaries (scripts/kube-build: about 9 CPU-minutes
# cold, once per machine; 0.03 s once cached) are built in the background
# from the very start of `make test`, so that a cold build overlaps deps,
# vet, compiling and the other packages' tests. Not niced: the e2e
# package's TestKubernetes lane waits for it, and at nice 19 beside the
# suite it got only idle CPU (1,185 s in one cold build), which put it and
# the lane after it on the suite's longest path. The cluster tests wait for it on
# kube-build's lock (kubetest.Binaries). Its output goes to KUBE_BUILD_LOG.
KUBE_BUILD_LOG ?= $(or $(TMPDIR),/tmp)/moorage-kube-build.log

# The packages whose tests run a Kubernetes cluster are given to go test
# last, so they start last (go test starts packages in the order it is
# given them, GOMAXPROCS at a time): on a machine where the build is cold
# they wait for it on its lock while holding one of go test's slots, and
# last, no other package queues behind them. The e2e package, the suite's
# longest path, is in the other slot from the start.
MODULE := github.com/moorage/moorage
KUBE_PKGS := ./internal/runtime/kubernetes ./internal/testutil/kubetest

# Not as another user than root: the cluster needs root, and its tests skip
# (or fail, under MOORAGE_REQUIRE_DOCKER=1) without it.
kube-build-bg:
	@if [ "$$(id -u)" = 0 ]; then \
		echo "kube-build: started in the background (scripts/kube-build, log $(KUBE_BUILD_LOG))"; \
		MOORAGE_KUBE_BUILD_NICE=0 nohup ./scripts/kube-build >>"$(KUBE_BUILD_LOG)" 2>&1 </dev/null & \
	else \
		echo "kube-build: not started: the Kubernetes cluster tests need root"; \
	fi

# Everything the tests need on this machine (Debian packages, Go tools):
# installed when run as root, else named with the command that installs it.
deps:
	./scripts/test-deps

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . ; echo "gofmt needed"; exit 1)
	$(GO) vet ./...
	cd examples/hello && $(GO) vet ./...

build:
	$(GO) build -o bin/moorage ./cmd/moorage

# Every fuzz target of the module, one after the other, each for FUZZTIME
# (make fuzz FUZZTIME=10m). Not part of `make test`: it is open-ended by
# nature. A failing input is saved under the package's testdata/fuzz/ and
# replayed by every later `go test` of that package.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' internal | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$t in ./$$(dirname $$f) for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
		done; \
	done
