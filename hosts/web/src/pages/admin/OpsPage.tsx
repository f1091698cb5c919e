import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { opsQuery, retryEventMutation, runbooksQuery } from "../../api/queries/admin";
import { newId } from "../../api/client";
import { loadable } from "../../components/States";
import { useAnnounce } from "../../components/Announcer";
import { OpsPageView } from "./OpsPageView";

export function OpsPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const [stuck, setStuck] = useState(15);
  const ops = useQuery({ ...opsQuery(stuck), placeholderData: (p) => p });
  const runbooks = useQuery(runbooksQuery());
  const retry = useMutation(retryEventMutation(qc));
  const [retrying, setRetrying] = useState<string>();
  return (
    <OpsPageView
      ops={loadable(ops)}
      runbooks={runbooks.data ?? []}
      stuckAfter={stuck}
      onStuckAfter={setStuck}
      onRetry={(id) => {
        setRetrying(id);
        retry.mutate(
          { id, key: newId() },
          { onSuccess: (e) => announce(`Event ${e.subject} is pending again; the relay publishes it.`) },
        );
      }}
      retrying={retry.isPending ? retrying : undefined}
      retryError={retry.error}
      retryErrorId={retry.error ? retrying : undefined}
    />
  );
}
export { OpsPage as Component };
