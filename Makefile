# GPUaaS — see README.md. Every target works on a fresh machine with Go and
# the services named in README.md; `make dev` needs nothing but Go and a
# local PostgreSQL installation (or DATABASE_URL).
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Test flags: CI sets GPUAAS_REQUIRE_SERVICES=1 so missing services fail.
TESTFLAGS ?= -count=1 -timeout 20m

GOBIN   ?= $(shell $(GO) env GOPATH)/bin
TEMPORAL_VERSION    := v1.5.1
STRIPE_MOCK_VERSION := v0.203.0
STEP_CA_VERSION     := v0.30.2
VERSITYGW_VERSION   := v1.8.0
MAILPIT_VERSION     := v1.33.1
# Deployment tooling (scripts/deploy/check.sh): chart rendering and schema
# validation, the agent's Debian package, Prometheus rules.
HELM_VERSION        := v4.3.2
KUBECONFORM_VERSION := v0.8.0
NFPM_VERSION        := v2.48.0
PROMETHEUS_VERSION  := v0.316.0
# The services' tools are stamped with their versions (see tools).
TEMPORAL   := $(GOBIN)/.temporal-$(TEMPORAL_VERSION)
STRIPEMOCK := $(GOBIN)/.stripe-mock-$(STRIPE_MOCK_VERSION)
STEPCA     := $(GOBIN)/.step-ca-$(STEP_CA_VERSION)
VERSITYGW  := $(GOBIN)/.versitygw-$(VERSITYGW_VERSION)
MAILPIT    := $(GOBIN)/.mailpit-$(MAILPIT_VERSION)

.PHONY: build test test-integration bench dev tools tool-go tool-temporal tool-stripe-mock tool-step-ca tool-versitygw tool-mailpit tool-deploy codegen lint migrate fmt golden-path web web-deps web-lint web-test web-e2e deploy-check agent-deb image lambda

# The web console (hosts/web, Node 20.19+): built into hosts/web/static/dist and
# embedded in the binary. `make build` and `make dev` rebuild it when its
# sources changed and npm is installed; without Node the binary serves a page
# saying how to build it. The runbooks screen bundles doc/runbook.md.
WEB     := hosts/web
WEB_SRC := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) \
           $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json $(WEB)/package-lock.json doc/runbook.md
HAVE_NPM := $(shell command -v npm 2>/dev/null)

build: $(if $(HAVE_NPM),web)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gpuaas ./hosts/gpuaas

test:
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

# Integration suites refuse to skip: Postgres, Redis and NATS must answer.
test-integration:
	GPUAAS_REQUIRE_SERVICES=1 $(GO) test $(TESTFLAGS) ./...

# Benchmarks print their ratios (outbox relay vs raw JetStream, …).
bench:
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

# `gpuaas dev` runs the Temporal CLI's dev server and versitygw: built once
# (a few minutes).
dev: $(TEMPORAL) $(VERSITYGW) $(MAILPIT) $(if $(HAVE_NPM),web)
	$(GO) run -ldflags '$(LDFLAGS)' ./hosts/gpuaas dev

# Pinned tools, installed into $(GOBIN). oapi-codegen, buf and the protoc
# plugins are pinned by go.mod's tool directives; the others are services
# tests and `gpuaas dev` start: the Temporal CLI (dev server), stripe-mock
# (Stripe adapter tests), step-ca (step-ca adapter tests) and versitygw
# (the S3 gateway of `gpuaas dev` and of the storage adapter tests) and mailpit
# (the SMTP server with a web inbox of `gpuaas dev` and of the mail tests).
# Each is built once (the stamp names its version: a bump rebuilds it).
# `make -j4 tools` builds them side by side.
tools: tool-go $(TEMPORAL) $(STRIPEMOCK) $(STEPCA) $(VERSITYGW) $(MAILPIT) tool-deploy

tool-go:
	$(GO) build -o /dev/null tool

tool-temporal: $(TEMPORAL)
$(TEMPORAL):
	$(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION) && touch $@

tool-stripe-mock: $(STRIPEMOCK)
$(STRIPEMOCK):
	$(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION) && touch $@

# step-ca without cgo: its PKCS#11/PC/SC support is not needed for tests.
tool-step-ca: $(STEPCA)
$(STEPCA):
	CGO_ENABLED=0 $(GO) install github.com/smallstep/certificates/cmd/step-ca@$(STEP_CA_VERSION) && touch $@

# versitygw: a real S3 gateway (posix backend); adapters/s3.LocateGateway
# finds it here.
tool-versitygw: $(VERSITYGW)
$(VERSITYGW):
	$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION) && touch $@

# mailpit: SMTP server with a web inbox and an HTTP API; adapters/smtp.LocateMailpit
# finds it here.
tool-mailpit: $(MAILPIT)
$(MAILPIT):
	$(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION) && touch $@

# Deployment tools, each built once into $(GOBIN) (a version bump here
# rebuilds it: the stamp names the version): helm (renders the chart),
# kubeconform (validates it), nfpm (the agent's .deb), compose-check
# (compose-go, the loader of `docker compose config`; its own module pins
# it) and promtool (alert rules).
tool-deploy: $(GOBIN)/.helm-$(HELM_VERSION) $(GOBIN)/.kubeconform-$(KUBECONFORM_VERSION) $(GOBIN)/.nfpm-$(NFPM_VERSION) \
	$(GOBIN)/.promtool-$(PROMETHEUS_VERSION) $(GOBIN)/compose-check

$(GOBIN)/.helm-$(HELM_VERSION):
	$(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION) && touch $@

$(GOBIN)/.kubeconform-$(KUBECONFORM_VERSION):
	$(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION) && touch $@

$(GOBIN)/.nfpm-$(NFPM_VERSION):
	$(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) && touch $@

$(GOBIN)/.promtool-$(PROMETHEUS_VERSION):
	$(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION) && touch $@

$(GOBIN)/compose-check: scripts/compose-check/main.go scripts/compose-check/go.mod scripts/compose-check/go.sum
	cd scripts/compose-check && $(GO) build -o $@ .

# Render and validate the Helm chart, check the compose file, build and
# inspect the agent package, check alert rules and dashboards.
deploy-check: tool-deploy
	./scripts/deploy/check.sh

# The node agent as a Debian package: bin/agent/gpuaas-agent_<version>_<arch>.deb.
agent-deb: $(GOBIN)/.nfpm-$(NFPM_VERSION)
	./scripts/deploy/agent/build.sh

# Lambda functions (hosts/lambda, doc/deployment.md#lambda): one `bootstrap`
# per function for the provided.al2023 runtime, bin/lambda/<function>/bootstrap.
# The function is chosen at build time (main.lambdaFunction); the runtime
# starts the binary without arguments. cgo stays on (go-nvml, linked into
# the dev sandbox's agent, needs it): the runtime's glibc is enough.
# LAMBDA_ARCH=arm64 (Graviton) needs CC set to an aarch64 cross compiler.
LAMBDA_FUNCTIONS := api payments-webhook billing-tick outbox-drain
LAMBDA_ARCH      ?= $(shell $(GO) env GOARCH)
lambda:
	@for f in $(LAMBDA_FUNCTIONS); do \
	  mkdir -p $(BIN)/lambda/$$f && \
	  echo "lambda: $(BIN)/lambda/$$f/bootstrap" && \
	  GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build -tags lambda.norpc -trimpath \
	    -ldflags "$(LDFLAGS) -s -w -X main.lambdaFunction=$$f" -o $(BIN)/lambda/$$f/bootstrap ./hosts/gpuaas || exit 1; \
	done

# The control-plane image (needs a Docker engine with BuildKit).
image:
	docker build -f scripts/deploy/Dockerfile --build-arg VERSION=$(VERSION) -t gpuaas:$(VERSION) .

codegen: web-deps
	./scripts/codegen.sh
	cd $(WEB) && npm run gen

# The protobuf contracts (doc/proto): buf's STANDARD lint, and no breaking
# change (FILE rules) against the previous commit — which also covers
# uncommitted edits. BUF_AGAINST_REF=<release tag> compares with a release.
BUF_AGAINST_REF ?= HEAD~1
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(GO) vet ./...
	$(GO) run ./scripts/openapi-check doc/api/openapi.yaml
	$(GO) tool buf lint doc/proto
	@if git rev-parse -q --verify '$(BUF_AGAINST_REF)' >/dev/null; then \
	  echo "buf breaking against $(BUF_AGAINST_REF)"; \
	  $(GO) tool buf breaking doc/proto --against '.git#ref=$(BUF_AGAINST_REF),subdir=doc/proto'; \
	else echo "buf breaking: no $(BUF_AGAINST_REF) to compare with"; fi
	./scripts/codegen.sh --check
	$(MAKE) web-lint

# End-to-end against a fresh `gpuaas dev` (scripts/ci-golden-path.sh starts
# one, runs the scripts and stops it): the compute golden path, the storage
# path (1 GiB upload, ranges, presigned URLs, quota, storage_sync on a node),
# the CLI path (issue 14's "Done when": `gpuaas login --api-key-stdin`, alloc
# create --wait, config-ssh, the system ssh to gpuaas.<name>, release, usage
# --csv, the browser login through the loopback redirect), then the money path
# and the notification path (issue 13's "Done when": inbox,
# live stream, mailpit, signed webhooks, refunds, audit CSV, event retry). The
# nodes are 8-GPU SKUs so that usage drains a small
# credit quickly.
golden-path:
	GPUAAS_DEV_FLAGS="-node-sku h100-80g-x8" ./scripts/ci-golden-path.sh storage-path cli-path money-path notify-path

web: $(WEB)/static/dist/index.html

web-deps: $(WEB)/node_modules/.package-lock.json

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

$(WEB)/static/dist/index.html: $(WEB)/node_modules/.package-lock.json $(WEB_SRC)
	cd $(WEB) && npm run build

# The typed client is current (like codegen.sh --check), ESLint, Prettier, tsc.
web-lint: web-deps
	cd $(WEB) && npm run lint

# Vitest: the API wrapper and the shared state components.
web-test: web-deps
	cd $(WEB) && npm test

# Playwright against a fresh `gpuaas dev` in Debian's Chromium (apt-get install chromium).
web-e2e: web
	./scripts/ci-console.sh

migrate:
	$(GO) run ./hosts/gpuaas migrate up

fmt:
	gofmt -w $$(git ls-files '*.go')
