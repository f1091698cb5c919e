import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useSearchParams } from "react-router";
import { auditExportPath, auditQuery, type AuditFilter } from "../../api/queries/admin";
import { download } from "../../api/client";
import { useAnnounce } from "../../components/Announcer";
import { loadable } from "../../components/States";
import { useCooldown, useCursorPages } from "../../components/hooks";
import { AuditPageView } from "./AuditPageView";

/** datetime-local (local time, no zone) → RFC 3339 for the API. */
function rfc3339(v?: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function AuditPage() {
  // Other screens link here with a tenant (?tenant_id=).
  const [params] = useSearchParams();
  const [initial] = useState<AuditFilter>(() =>
    params.get("tenant_id") ? { tenant_id: params.get("tenant_id")! } : {},
  );
  const [draft, setDraft] = useState<AuditFilter>(initial);
  const [filter, setFilter] = useState<AuditFilter>(initial);
  const pages = useCursorPages();
  const q = useQuery({ ...auditQuery(filter, pages.cursor), placeholderData: (p) => p });
  const announce = useAnnounce();
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<unknown>(null);
  const cooldown = useCooldown();
  return (
    <AuditPageView
      onExport={() => {
        setExporting(true);
        setExportError(null);
        // The applied filters: what the table shows is what the file holds.
        download(auditExportPath(filter), "audit.csv").then(
          () => (setExporting(false), announce("Audit log CSV downloaded.")),
          (e: unknown) => (setExporting(false), setExportError(e), cooldown.trip(e)),
        );
      }}
      exporting={exporting}
      exportError={exportError}
      exportCooldown={cooldown.secondsLeft}
      page={loadable(q)}
      draft={draft}
      onDraft={setDraft}
      onApply={() => {
        setFilter({ ...draft, since: rfc3339(draft.since), until: rfc3339(draft.until) });
        pages.reset();
      }}
      pager={pages.pager(q.data?.next_cursor)}
    />
  );
}
export { AuditPage as Component };
