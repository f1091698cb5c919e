# GPUaaS — see README.md. Every target works on a fresh machine with Go and
# the services named in README.md; `make dev` needs nothing but Go and a
# local PostgreSQL installation (or DATABASE_URL).
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Test flags: CI sets GPUAAS_REQUIRE_SERVICES=1 so missing services fail.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: build test test-integration bench dev tools codegen lint migrate fmt

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gpuaas ./hosts/gpuaas

test:
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

# Integration suites refuse to skip: Postgres, Redis and NATS must answer.
test-integration:
	GPUAAS_REQUIRE_SERVICES=1 $(GO) test $(TESTFLAGS) ./...

# Benchmarks print their ratios (outbox relay vs raw JetStream, …).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

dev:
	$(GO) run -ldflags '$(LDFLAGS)' ./hosts/gpuaas dev

# Pinned tools. oapi-codegen is pinned by go.mod's tool directive; the
# temporal CLI (dev server for `gpuaas dev` and the Temporal tests) is
# installed into $(go env GOPATH)/bin.
tools:
	$(GO) build -o /dev/null tool
	$(GO) install github.com/temporalio/cli/cmd/temporal@v1.5.1

codegen:
	./scripts/codegen.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(GO) vet ./...
	./scripts/codegen.sh --check

migrate:
	$(GO) run ./hosts/gpuaas migrate up

fmt:
	gofmt -w $$(git ls-files '*.go')
