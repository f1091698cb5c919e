#!/usr/bin/env bash
# Builds the node agent's Debian package: bin/agent/gpuaas-agent, then
# nfpm (pinned in `make tools`) with scripts/deploy/agent/nfpm.yaml, into
# bin/agent/gpuaas-agent_<version>_<arch>.deb. Run from anywhere.
#   VERSION  package version (default: from git describe, digits first)
#   GOARCH   target architecture (default: this machine's)
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PATH="$PATH:$(go env GOPATH)/bin"
export GOARCH="${GOARCH:-$(go env GOARCH)}"
if [[ -z "${VERSION:-}" ]]; then
  # Debian versions start with a digit: v0.1.0-3-gabc → 0.1.0-3-gabc,
  # a bare commit → 0.0.0~gabc.
  d="$(git describe --tags --always 2>/dev/null || echo dev)"
  if [[ "$d" =~ ^v?[0-9] ]]; then VERSION="${d#v}"; else VERSION="0.0.0~g$d"; fi
fi
export VERSION
mkdir -p bin/agent
# cgo on: go-nvml loads the NVIDIA library at run time (dlopen).
CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}" go build -trimpath \
  -ldflags "-s -w -X github.com/gpuaas/gpuaas/nodeagent.Version=$VERSION" -o bin/agent/gpuaas-agent ./nodeagent/cmd/gpuaas-agent
nfpm package --config scripts/deploy/agent/nfpm.yaml --packager deb --target bin/agent/
ls bin/agent/*.deb
