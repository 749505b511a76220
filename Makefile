# The whole test suite: both Go modules (moorage and the example app), vet,
# and the end-to-end tests that drive the built binary.
GO ?= go

.PHONY: test deps vet build fuzz

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

test: deps vet
	$(GO) test -count=1 -timeout 80m -parallel $(TEST_PARALLEL) ./...
	cd examples/hello && $(GO) test -count=1 ./...

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
