import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { auditQuery, type AuditFilter } from "../../api/queries/admin";
import { loadable } from "../../components/States";
import { useCursorPages } from "../../components/hooks";
import { AuditPageView } from "./AuditPageView";

/** datetime-local (local time, no zone) → RFC 3339 for the API. */
function rfc3339(v?: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function AuditPage() {
  const [draft, setDraft] = useState<AuditFilter>({});
  const [filter, setFilter] = useState<AuditFilter>({});
  const pages = useCursorPages();
  const q = useQuery({ ...auditQuery(filter, pages.cursor), placeholderData: (p) => p });
  return (
    <AuditPageView
      page={loadable(q)}
      draft={draft}
      onDraft={setDraft}
      onApply={() => {
        setFilter({ ...draft, since: rfc3339(draft.since), until: rfc3339(draft.until) });
        pages.reset();
      }}
      pager={{
        page: pages.page,
        hasPrev: pages.page > 1,
        hasNext: !!q.data?.next_cursor,
        onPrev: pages.prev,
        onNext: () => pages.next(q.data?.next_cursor),
      }}
    />
  );
}
export { AuditPage as Component };
