#!/usr/bin/env bash
# Starts `gpuaas dev` on a fresh data directory (extra flags in
# GPUAAS_DEV_FLAGS), runs the end-to-end scripts against it
# (scripts/golden-path, then those named as arguments), and stops it.
# Exits non-zero on any failure and then prints the platform's log tail.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
api=http://127.0.0.1:8080
dir=$(mktemp -d /tmp/gpuaas-golden.XXXXXX)
log="$dir/dev.log"
$GO build -o "$dir/gpuaas" ./hosts/gpuaas

# shellcheck disable=SC2086 # GPUAAS_DEV_FLAGS is a list of flags
"$dir/gpuaas" dev -data-dir "$dir/data" ${GPUAAS_DEV_FLAGS:-} >"$log" 2>&1 &
pid=$!
cleanup() {
  code=$?
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  # Whatever a killed run left (its children die with it on Linux; this
  # covers the rest) before the data dir goes.
  "$dir/gpuaas" dev down -data-dir "$dir/data" >/dev/null 2>&1 || true
  if [ "$code" -ne 0 ]; then
    echo "golden-path: platform log (tail):" >&2
    tail -n 60 "$log" >&2 || true
  fi
  rm -rf "$dir"
  exit "$code"
}
trap cleanup EXIT

for i in $(seq 1 240); do
  if curl -fsS "$api/api/v1/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "golden-path: gpuaas dev exited" >&2; exit 1; }
  [ "$i" -eq 240 ] && { echo "golden-path: gpuaas dev not healthy after 120 s" >&2; exit 1; }
  sleep 0.5
done

# What scripts/notify-path reads besides the API: mailpit's web inbox and the
# private cluster's URL, both from the banner.
for _ in $(seq 1 60); do grep -q "mailpit: web inbox" "$log" && break; sleep 0.5; done
GPUAAS_DEV_MAILPIT=$(grep -o "mailpit: web inbox http://[0-9.:]*" "$log" | head -1 | sed 's/.*inbox //') || true
pgport=$(grep -o "private cluster 127.0.0.1:[0-9]*" "$log" | head -1 | sed 's/.*://') || true
export GPUAAS_DEV_MAILPIT
if [ -n "$pgport" ]; then
  export GPUAAS_DEV_DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/gpuaas?sslmode=disable"
fi

$GO run ./scripts/golden-path -api "$api"
for script in "$@"; do
  $GO run "./scripts/$script" -api "$api"
done
