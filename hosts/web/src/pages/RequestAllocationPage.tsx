import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { useProject } from "../auth";
import { createAllocationMutation, skusQuery, sshKeysQuery } from "../api/queries/compute";
import { balanceQuery } from "../api/queries/billing";
import { loadable } from "../components/States";
import { useCooldown, useIdempotencyKey } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { RequestAllocationPageView } from "./RequestAllocationPageView";

export function RequestAllocationPage() {
  const [params] = useSearchParams();
  const { project } = useProject();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const announce = useAnnounce();
  const skus = useQuery(skusQuery());
  const keys = useQuery(sshKeysQuery());
  const balance = useQuery(balanceQuery());
  const [chosen, setChosen] = useState(params.get("sku") ?? "");
  const skuId = chosen || skus.data?.find((s) => s.available > 0)?.id || "";
  const [keyIds, setKeyIds] = useState<string[]>([]);
  const idem = useIdempotencyKey({ skuId, keyIds, project: project.id });
  const cooldown = useCooldown();
  const create = useMutation({ ...createAllocationMutation(qc, project.id), onError: cooldown.trip });
  return (
    <RequestAllocationPageView
      skus={loadable(skus)}
      keys={loadable(keys)}
      balance={balance.data}
      skuId={skuId}
      onSku={setChosen}
      keyIds={keyIds}
      onKeys={setKeyIds}
      pending={create.isPending}
      error={create.error}
      cooldown={cooldown.secondsLeft}
      onSubmit={() =>
        create.mutate(
          { sku_id: skuId, ssh_key_ids: keyIds.length ? keyIds : undefined, key: idem.key },
          {
            onSuccess: (a) => {
              announce("Node requested. It is being prepared.");
              idem.reset();
              navigate(`/allocations/${a.id}`);
            },
          },
        )
      }
    />
  );
}
export { RequestAllocationPage as Component };
