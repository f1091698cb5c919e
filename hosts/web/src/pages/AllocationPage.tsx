import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { useParams } from "react-router";
import { useProject } from "../auth";
import { allocationQuery, releaseAllocationMutation, skusQuery } from "../api/queries/compute";
import { saveBlob } from "../api/client";
import type { Allocation } from "../api/types";
import { shortId } from "../components/format";
import { loadable } from "../components/States";
import { useCooldown, useIdempotencyKey, useTick } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { AllocationPageView } from "./AllocationPageView";

/**
 * The allocation's ~/.ssh/config entry, under the alias `gpuaas config-ssh`
 * writes (`gpuaas.<short name>`); the node's host key, when its agent
 * reported one, as the known_hosts line that pins it.
 */
export function sshConfigEntry(a: Allocation): string {
  if (!a.access) return "";
  const alias = `gpuaas.${shortId(a.id)}`;
  const lines = [
    `# GPUaaS allocation ${a.id}: add to ~/.ssh/config, then \`ssh ${alias}\`.`,
    `Host ${alias}`,
    `  HostName ${a.access.host}`,
    `  Port ${a.access.port}`,
    `  User ${a.access.user}`,
    `  HostKeyAlias ${alias}`,
  ];
  const key = a.access.host_key?.trim();
  if (key) {
    lines.push(
      "# The node's host key: add this line (without the leading #) to ~/.ssh/known_hosts, and ssh",
      "# verifies the node on the first connection instead of asking:",
      `# ${alias} ${key}`,
    );
  }
  return lines.join("\n") + "\n";
}

export function AllocationPage() {
  const { id = "" } = useParams();
  const { project, me } = useProject();
  const qc = useQueryClient();
  const announce = useAnnounce();
  const q = useQuery(allocationQuery(id));
  const skus = useQuery(skusQuery());
  const now = useTick(1000);
  const cooldown = useCooldown();
  const idem = useIdempotencyKey({ release: id });
  const release = useMutation({ ...releaseAllocationMutation(qc), onError: cooldown.trip });
  const prev = useRef<string | undefined>(undefined);
  const state = q.data?.state;
  useEffect(() => {
    if (state && prev.current && prev.current !== state)
      announce(`Allocation is now ${state.replace("_", " ")}.`);
    prev.current = state;
  }, [state, announce]);
  return (
    <AllocationPageView
      allocation={loadable(q)}
      sku={skus.data?.find((s) => s.id === q.data?.sku_id)}
      now={now}
      canTerminal={q.data?.user_id === me.user.id}
      projectId={q.data?.project_id ?? project.id}
      onRelease={() => release.mutateAsync({ id, key: idem.key }).then(() => announce("Release requested."))}
      releasing={release.isPending}
      releaseError={release.error}
      releaseCooldown={cooldown.secondsLeft}
      onDownloadConfig={(a) =>
        saveBlob(new Blob([sshConfigEntry(a)], { type: "text/plain" }), `gpuaas.${shortId(a.id)}.sshconfig`)
      }
    />
  );
}
export { AllocationPage as Component };
