#!/usr/bin/env bash
# codegen.sh generates Go code from the API contract.
#
#   scripts/codegen.sh          regenerate hosts/http/api/api.gen.go and the Go client's
#                               hosts/http/client/internal/apigen/client.gen.go from doc/api/openapi.yaml,
#                               and hosts/connect/gen from the buf module in doc/proto
#   scripts/codegen.sh --check  regenerate into a temporary directory and fail if the
#                               committed files differ (CI and a Go test run this)
#
# The generator is pinned by the `tool` directive in go.mod, so the output depends
# only on the contract, the config and that version: running it twice gives the
# same bytes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

spec="doc/api/openapi.yaml"
config="hosts/http/api/oapi-codegen.yaml"
target="hosts/http/api/api.gen.go"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# generate writes the generated file for the contract to $1.
generate() {
  local out="$1"
  {
    echo "// Regenerate with scripts/codegen.sh from doc/api/openapi.yaml (config: hosts/http/api/oapi-codegen.yaml)."
    echo "// Do not edit by hand; the types here are used by hosts/http and, re-exported, by the Go client (hosts/http/client) only."
    echo
    go tool oapi-codegen -config "$config" "$spec"
  } >"$out"
}

generate "$tmp/api.gen.go"

# The Go client's request plumbing (hosts/http/client/internal/apigen): the same
# contract, the host's types (dot-imported), its own package comment in
# doc.go (the generator's is dropped).
client_config="hosts/http/client/internal/apigen/oapi-codegen.yaml"
client_target="hosts/http/client/internal/apigen/client.gen.go"
{
  echo "// Regenerate with scripts/codegen.sh from doc/api/openapi.yaml (config: $client_config)."
  echo "// Do not edit by hand."
  echo
  go tool oapi-codegen -config "$client_config" "$spec" | sed '/^\/\/ Package apigen provides primitives/,/^\/\/$/d'
} >"$tmp/client.gen.go"

# generate_proto writes the Go code for the agent protocol (doc/proto) under
# $1. buf, protoc-gen-go and protoc-gen-connect-go are all pinned by go.mod's
# tool directives; the plugins are built into a private bin directory put
# first on PATH, so buf runs them locally and never asks a remote registry.
proto_target="hosts/connect/gen"
generate_proto() {
  local out="$1"
  mkdir -p "$tmp/bin" "$out"
  go build -o "$tmp/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
  go build -o "$tmp/bin/protoc-gen-connect-go" connectrpc.com/connect/cmd/protoc-gen-connect-go
  PATH="$tmp/bin:$PATH" go tool buf generate doc/proto --template doc/proto/buf.gen.yaml \
    --output "$tmp/buf-out"
  # buf.gen.yaml's out paths are relative to the repository root, so the
  # files land under $tmp/buf-out/hosts/connect/gen.
  cp -R "$tmp/buf-out/$proto_target/." "$out/"
}

generate_proto "$tmp/proto"

if [[ $check -eq 1 ]]; then
  stale=0
  if ! diff -u "$target" "$tmp/api.gen.go" >"$tmp/diff"; then
    echo "codegen: $target is stale; run scripts/codegen.sh and commit the result:" >&2
    head -n 40 "$tmp/diff" >&2
    stale=1
  else
    echo "codegen: $target is up to date"
  fi
  if ! diff -u "$client_target" "$tmp/client.gen.go" >"$tmp/client.diff"; then
    echo "codegen: $client_target is stale; run scripts/codegen.sh and commit the result:" >&2
    head -n 40 "$tmp/client.diff" >&2
    stale=1
  else
    echo "codegen: $client_target is up to date"
  fi
  if ! diff -ru "$proto_target" "$tmp/proto" >"$tmp/proto.diff"; then
    echo "codegen: $proto_target is stale; run scripts/codegen.sh and commit the result:" >&2
    head -n 40 "$tmp/proto.diff" >&2
    stale=1
  else
    echo "codegen: $proto_target is up to date"
  fi
  exit $stale
fi

cp "$tmp/api.gen.go" "$target"
echo "codegen: wrote $target"
cp "$tmp/client.gen.go" "$client_target"
echo "codegen: wrote $client_target"
rm -rf "$proto_target"
mkdir -p "$proto_target"
cp -R "$tmp/proto/." "$proto_target/"
echo "codegen: wrote $proto_target"
