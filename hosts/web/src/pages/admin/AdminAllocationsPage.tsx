import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { adminAllocationsQuery, adminNodesQuery, forceReleaseMutation } from "../../api/queries/admin";
import type { AllocationState } from "../../api/types";
import { newId } from "../../api/client";
import { loadable } from "../../components/States";
import { useCursorPages } from "../../components/hooks";
import { useAnnounce } from "../../components/Announcer";
import { AdminAllocationsPageView } from "./AdminAllocationsPageView";

export function AdminAllocationsPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const [status, setStatus] = useState<AllocationState | undefined>();
  const pages = useCursorPages();
  const q = useQuery({ ...adminAllocationsQuery(status, pages.cursor), placeholderData: (p) => p });
  const release = useMutation(forceReleaseMutation(qc));
  // The fleet list the Nodes page keeps (same query, so usually cached) names each allocation's node.
  const nodes = useQuery(adminNodesQuery());
  const nodeNames = useMemo(() => new Map(nodes.data?.map((n) => [n.id, n.name])), [nodes.data]);
  return (
    <AdminAllocationsPageView
      page={loadable(q)}
      nodeNames={nodeNames}
      status={status}
      onStatus={(s) => {
        setStatus(s);
        pages.reset();
      }}
      pager={pages.pager(q.data?.next_cursor)}
      // The confirm button is disabled while the request runs; the key makes a network retry safe.
      onForceRelease={(id) =>
        release.mutateAsync({ id, key: newId() }).then(() => announce("Release forced."))
      }
      releasing={release.isPending}
      releaseError={release.error}
    />
  );
}
export { AdminAllocationsPage as Component };
