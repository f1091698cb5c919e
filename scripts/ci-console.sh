#!/usr/bin/env bash
# Starts `gpuaas dev` (with the web console built in) on a fresh data directory
# and runs the console's Playwright suite (hosts/web/e2e) against it in
# Debian's Chromium, then stops it. The nodes are 8-GPU SKUs so a short run
# costs whole cents and the billing worker has debits to show. Exits non-zero
# on any failure and then prints the platform's log tail.
#
# It listens on its own ports (GPUAAS_E2E_PORT, default 18080, and the next
# few), never gpuaas dev's defaults, so a developer's own gpuaas dev and
# scripts that talk to :8080 neither collide with it nor reach it.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
port=${GPUAAS_E2E_PORT:-18080}
api=http://127.0.0.1:$port
dir=$(mktemp -d /tmp/gpuaas-console.XXXXXX)
log="$dir/dev.log"
$GO build -o "$dir/gpuaas" ./hosts/gpuaas

"$dir/gpuaas" dev -data-dir "$dir/data" -node-sku h100-80g-x8 \
  -http-addr "127.0.0.1:$port" -oidc-addr "127.0.0.1:$((port + 1))" -agent-addr "127.0.0.1:$((port + 2))" \
  -pg-port "$((port + 3))" -node-ssh-port "$((port + 10))" >"$log" 2>&1 &
pid=$!
cleanup() {
  code=$?
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  if [ "$code" -ne 0 ]; then
    echo "console e2e: platform log (tail):" >&2
    tail -n 60 "$log" >&2 || true
  fi
  rm -rf "$dir"
  exit "$code"
}
trap cleanup EXIT

for i in $(seq 1 240); do
  if curl -fsS "$api/api/v1/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "console e2e: gpuaas dev exited" >&2; exit 1; }
  [ "$i" -eq 240 ] && { echo "console e2e: gpuaas dev not healthy after 120 s" >&2; exit 1; }
  sleep 0.5
done
# The binary must carry the console, not the how-to-build page.
curl -fsS "$api/" | grep -q 'csp-nonce' || { echo "console e2e: the binary has no built console (make web)" >&2; exit 1; }

cd hosts/web
GPUAAS_E2E_URL="$api" npx playwright test
