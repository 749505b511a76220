# The whole test suite: both Go modules (moorage and the example app), vet,
# and the end-to-end tests that drive the built binary.
GO ?= go

.PHONY: test vet build

test: vet
	$(GO) test -count=1 -timeout 45m ./...
	cd examples/hello && $(GO) test -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . ; echo "gofmt needed"; exit 1)
	$(GO) vet ./...
	cd examples/hello && $(GO) vet ./...

build:
	$(GO) build -o bin/moorage ./cmd/moorage
