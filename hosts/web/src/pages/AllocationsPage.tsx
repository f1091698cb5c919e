import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useProject } from "../auth";
import { allocationsQuery, skusQuery } from "../api/queries/compute";
import type { AllocationState } from "../api/types";
import { loadable } from "../components/States";
import { useCursorPages, useTick } from "../components/hooks";
import { AllocationsPageView } from "./AllocationsPageView";

export function AllocationsPage() {
  const { project } = useProject();
  const [status, setStatus] = useState<AllocationState | undefined>();
  const pages = useCursorPages();
  const q = useQuery({ ...allocationsQuery(project.id, status, pages.cursor), placeholderData: (p) => p });
  const skus = useQuery(skusQuery());
  const now = useTick(1000);
  return (
    <AllocationsPageView
      page={loadable(q)}
      skus={skus.data ?? []}
      status={status}
      onStatus={(s) => {
        setStatus(s);
        pages.reset();
      }}
      now={now}
      pager={pages.pager(q.data?.next_cursor, q.isFetching)}
    />
  );
}
export { AllocationsPage as Component };
