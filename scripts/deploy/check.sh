#!/usr/bin/env bash
# CI checks of the deployment files (`make deploy-check`), with the tools
# `make tools` pins — no Docker engine, no cluster, no network beyond the Go
# module proxy:
#   - the Helm chart: `helm lint --strict`, rendered with its defaults and
#     with every optional part on, validated by kubeconform -strict against
#     schemas made offline from the Kubernetes OpenAPI document
#     (scripts/kubeschema), and every Deployment has probes, resources and a
#     PodDisruptionBudget;
#   - the compose file: compose-go, the loader of `docker compose config`
#     (scripts/compose-check), with env.example;
#   - the node agent's Debian package: built with nfpm, its contents, its
#     systemd unit verified by systemd-analyze and held under an exposure
#     score of 7.0 (`systemd-analyze security`).
#   - Prometheus alert rules (promtool check rules) and Grafana dashboards
#     (JSON, every panel with a query, every alert naming its runbook).
set -euo pipefail
cd "$(dirname "$0")/../.."
GOBIN="$(go env GOPATH)/bin"
export PATH="$PATH:$GOBIN"
K8S_VERSION="${K8S_VERSION:-v1.34.3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "deploy-check: Helm chart"
schemas="$(go env GOPATH)/kubeschema/$K8S_VERSION"
if [[ ! -f "$schemas/deployment-apps-v1.json" ]]; then
  go run ./scripts/kubeschema -version "$K8S_VERSION" -out "$schemas"
fi
chart=scripts/deploy/helm/gpuaas
helm lint --strict "$chart"
helm template gpuaas "$chart" >"$tmp/default.yaml"
helm template gpuaas "$chart" --set ingress.enabled=true --set ingress.tlsSecret=gpuaas-tls \
  --set components.worker-storage.enabled=true --set components.worker-outbox.enabled=true \
  --set keys.kmsKeyFile=false >"$tmp/all.yaml"
kubeconform -strict -summary -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  "$tmp/default.yaml" "$tmp/all.yaml"
for f in "$tmp/default.yaml" "$tmp/all.yaml"; do
  deployments=$(grep -c '^kind: Deployment$' "$f")
  for want in 'livenessProbe:' 'readinessProbe:' 'startupProbe:' 'runAsNonRoot: true' 'readOnlyRootFilesystem: true'; do
    got=$(grep -c "^ *$want" "$f" || true)
    if (( got < deployments )); then
      echo "deploy-check: $f: $deployments Deployments but $got with $want" >&2; exit 1
    fi
  done
  pdbs=$(grep -c '^kind: PodDisruptionBudget$' "$f")
  if (( pdbs != deployments )); then
    echo "deploy-check: $f: $deployments Deployments, $pdbs PodDisruptionBudgets" >&2; exit 1
  fi
  grep -q 'helm.sh/hook: pre-install,pre-upgrade' "$f" || { echo "deploy-check: no migration hook Job" >&2; exit 1; }
done

echo "deploy-check: compose file"
compose-check -env-file scripts/deploy/compose/env.example scripts/deploy/compose/compose.yaml

echo "deploy-check: node agent package"
scripts/deploy/agent/build.sh >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
deb="$(ls -t bin/agent/gpuaas-agent_*.deb | head -1)"
dpkg-deb --info "$deb" >"$tmp/info.txt"
grep -q "Package: gpuaas-agent" "$tmp/info.txt"
dpkg-deb -x "$deb" "$tmp/deb"
for f in usr/bin/gpuaas-agent usr/lib/systemd/system/gpuaas-agent.service etc/default/gpuaas-agent; do
  [[ -e "$tmp/deb/$f" ]] || { echo "deploy-check: $deb lacks /$f" >&2; exit 1; }
done
"$tmp/deb/usr/bin/gpuaas-agent" version
unit="$tmp/deb/usr/lib/systemd/system/gpuaas-agent.service"
for want in 'Delegate=yes' 'RuntimeDirectory=gpuaas-agent' 'User=root' 'NoNewPrivileges=yes' 'ProtectSystem=' 'CapabilityBoundingSet='; do
  grep -q "^$want" "$unit" || { echo "deploy-check: unit lacks $want" >&2; exit 1; }
done
if command -v systemd-analyze >/dev/null; then
  # verify checks that ExecStart exists: point it at the extracted binary.
  sed "s|^ExecStart=/usr/bin/gpuaas-agent|ExecStart=$tmp/deb/usr/bin/gpuaas-agent|" "$unit" >"$tmp/gpuaas-agent.service"
  systemd-analyze verify "$tmp/gpuaas-agent.service"
  systemd-analyze security --offline=true --threshold=70 "$tmp/gpuaas-agent.service" >"$tmp/security.txt" 2>&1 ||
    { tail -40 "$tmp/security.txt" >&2; echo "deploy-check: unit exposure above 7.0" >&2; exit 1; }
  grep 'Overall exposure' "$tmp/security.txt"
else
  echo "deploy-check: systemd-analyze not installed; unit not verified" >&2
fi

if [[ -d scripts/deploy/prometheus ]]; then
  echo "deploy-check: alert rules and dashboards"
  promtool check rules scripts/deploy/prometheus/*.rules.yaml
  go run ./scripts/deploy/lintobs -rules scripts/deploy/prometheus -dashboards scripts/deploy/grafana -runbook doc/runbook.md
fi
echo "deploy-check: ok"
