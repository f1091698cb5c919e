#!/usr/bin/env bash
# codegen.sh generates Go code from the API contract.
#
#   scripts/codegen.sh          regenerate hosts/http/api/api.gen.go from doc/api/openapi.yaml
#   scripts/codegen.sh --check  regenerate into a temporary directory and fail if the
#                               committed file differs (CI and a Go test run this)
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
    echo "// Do not edit by hand; the types here must not be used outside hosts/http."
    echo
    go tool oapi-codegen -config "$config" "$spec"
  } >"$out"
}

generate "$tmp/api.gen.go"

if [[ $check -eq 1 ]]; then
  if ! diff -u "$target" "$tmp/api.gen.go" >"$tmp/diff"; then
    echo "codegen: $target is stale; run scripts/codegen.sh and commit the result:" >&2
    head -n 40 "$tmp/diff" >&2
    exit 1
  fi
  echo "codegen: $target is up to date"
  exit 0
fi

cp "$tmp/api.gen.go" "$target"
echo "codegen: wrote $target"
