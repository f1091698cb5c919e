#!/bin/sh
# gpuaas-agent post-install: the configuration directory, then systemd. The
# service is enabled but not started on a first install: it needs the CA
# root and a bootstrap token in /etc/gpuaas-agent first (doc/runbook.md).
set -e
install -d -m 0700 -o root -g root /etc/gpuaas-agent
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable gpuaas-agent.service >/dev/null
  # An upgrade restarts a running agent (KillMode=process keeps users' jobs).
  if [ -n "$2" ] && systemctl is-active --quiet gpuaas-agent.service; then
    systemctl restart gpuaas-agent.service
  fi
fi
