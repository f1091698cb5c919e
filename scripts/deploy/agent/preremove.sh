#!/bin/sh
# gpuaas-agent pre-remove: stop and disable the service on removal (not on
# upgrade). The allocations' accounts are the control plane's to release.
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now gpuaas-agent.service >/dev/null || true
fi
