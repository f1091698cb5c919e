import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import {
  adminNodesQuery,
  maintenanceMutation,
  probeNodeMutation,
  registerNodeMutation,
  retireNodeMutation,
} from "../../api/queries/admin";
import { skusQuery } from "../../api/queries/compute";
import type { NodeRegistration, NodeState } from "../../api/types";
import { loadable } from "../../components/States";
import { useCooldown, useIdempotencyKey } from "../../components/hooks";
import { useAnnounce } from "../../components/Announcer";
import { NodesPageView, type NodeForm } from "./NodesPageView";

export function NodesPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const [filter, setFilter] = useState<NodeState | undefined>();
  const nodes = useQuery(adminNodesQuery(filter));
  const skus = useQuery(skusQuery());
  const [form, setForm] = useState<NodeForm>({ name: "", sku_id: "", ssh_host: "", ssh_port: "22" });
  const [registration, setRegistration] = useState<NodeRegistration>();
  const idem = useIdempotencyKey(form);
  const cooldown = useCooldown();
  const register = useMutation({ ...registerNodeMutation(qc), onError: cooldown.trip });
  const probe = useMutation(probeNodeMutation());
  const [probeId, setProbeId] = useState<string>();
  const maint = useMutation(maintenanceMutation(qc));
  const retire = useMutation(retireNodeMutation(qc));
  return (
    <NodesPageView
      nodes={loadable(nodes)}
      skus={skus.data ?? []}
      filter={filter}
      onFilter={setFilter}
      form={form}
      onForm={setForm}
      registering={register.isPending}
      registerError={register.error}
      registerCooldown={cooldown.secondsLeft}
      onRegister={() =>
        register.mutate(
          {
            name: form.name,
            sku_id: form.sku_id,
            ssh_host: form.ssh_host,
            ssh_port: Number(form.ssh_port) || 22,
            key: idem.key,
          },
          {
            onSuccess: (r) => {
              setRegistration(r);
              setForm({ name: "", sku_id: "", ssh_host: "", ssh_port: "22" });
              announce(`Node ${r.node.name} registered.`);
            },
          },
        )
      }
      registration={registration}
      onCloseRegistration={() => setRegistration(undefined)}
      onProbe={(id) => {
        setProbeId(id);
        probe.mutate(id);
      }}
      probe={
        probeId
          ? { id: probeId, result: probe.data, error: probe.error, pending: probe.isPending }
          : undefined
      }
      onMaintenance={(id, on) =>
        maint.mutate(
          { id, on },
          { onSuccess: () => announce(on ? "Maintenance started." : "Maintenance ended.") },
        )
      }
      maintenanceError={maint.error}
      onRetire={(id) => retire.mutateAsync(id).then(() => announce("Node retired."))}
      retiring={retire.isPending}
      retireError={retire.error}
    />
  );
}
export { NodesPage as Component };
