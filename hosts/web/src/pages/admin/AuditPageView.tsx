import { IdLink } from "../../components/IdLink";
import type { AuditLogPage } from "../../api/types";
import type { AuditFilter } from "../../api/queries/admin";
import { ActionButton, Field } from "../../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable, type Pager } from "../../components/Table";
import { dateTime } from "../../components/format";
import { usePageHeading } from "../../components/hooks";

export interface AuditPageViewProps {
  page: Loadable<AuditLogPage>;
  draft: AuditFilter;
  onDraft: (f: AuditFilter) => void;
  onApply: () => void;
  pager: Pager;
  onExport: () => void;
  exporting: boolean;
  exportError: unknown;
  exportCooldown: number;
}

export function AuditPageView(p: AuditPageViewProps) {
  const h = usePageHeading("Audit log");
  const set = (k: keyof AuditFilter) => (e: React.ChangeEvent<HTMLInputElement>) =>
    p.onDraft({ ...p.draft, [k]: e.target.value });
  return (
    <section>
      <div className="page-head">
        <h1 ref={h} tabIndex={-1}>
          Audit log
        </h1>
        <ActionButton onClick={p.onExport} pending={p.exporting} cooldown={p.exportCooldown}>
          Export CSV
        </ActionButton>
      </div>
      <p className="muted">The export holds every event the applied filters select, newest first.</p>
      <ActionError error={p.exportError} />
      <form
        className="card row"
        style={{ marginBottom: 16 }}
        onSubmit={(e) => {
          e.preventDefault();
          p.onApply();
        }}
        aria-label="Filters"
      >
        <Field label="Tenant id">
          {(f) => <input {...f} value={p.draft.tenant_id ?? ""} onChange={set("tenant_id")} />}
        </Field>
        <Field label="Actor id">
          {(f) => <input {...f} value={p.draft.actor_id ?? ""} onChange={set("actor_id")} />}
        </Field>
        <Field label="Action">
          {(f) => (
            <input
              {...f}
              value={p.draft.action ?? ""}
              onChange={set("action")}
              placeholder="e.g. billing.admin_credit"
            />
          )}
        </Field>
        <Field label="Target type">
          {(f) => (
            <input
              {...f}
              value={p.draft.resource_type ?? ""}
              onChange={set("resource_type")}
              placeholder="e.g. allocation"
            />
          )}
        </Field>
        <Field label="Target id">
          {(f) => <input {...f} value={p.draft.resource_id ?? ""} onChange={set("resource_id")} />}
        </Field>
        <Field label="Since">
          {(f) => <input {...f} type="datetime-local" value={p.draft.since ?? ""} onChange={set("since")} />}
        </Field>
        <Field label="Until">
          {(f) => <input {...f} type="datetime-local" value={p.draft.until ?? ""} onChange={set("until")} />}
        </Field>
        <div className="field">
          <button type="submit" className="primary">
            Apply filters
          </button>
        </div>
      </form>
      <StateView
        state={p.page}
        what="the audit log"
        isEmpty={(d) => d.events.length === 0}
        empty={<Empty title="No events match" />}
      >
        {(d) => (
          <DataTable
            caption="Audit events"
            rows={d.events}
            rowKey={(e) => e.id}
            pager={p.pager}
            columns={[
              { header: "When", cell: (e) => dateTime(e.occurred_at) },
              { header: "Action", cell: (e) => <code>{e.action}</code> },
              { header: "Outcome", cell: (e) => e.outcome },
              { header: "Actor", cell: (e) => `${e.actor_type} ${e.actor_id}` },
              { header: "Resource", cell: (e) => `${e.resource_type} ${e.resource_id}` },
              {
                header: "Tenant",
                cell: (e) =>
                  e.tenant_id ? (
                    <IdLink to={`/admin/tenants/${e.tenant_id}`} id={e.tenant_id} what="Tenant" />
                  ) : (
                    "—"
                  ),
              },
            ]}
          />
        )}
      </StateView>
    </section>
  );
}
