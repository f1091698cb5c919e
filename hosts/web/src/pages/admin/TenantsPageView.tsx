import { Link } from "react-router";
import type { AdminTenantPage } from "../../api/types";
import { Field } from "../../components/Controls";
import { Empty, StateView, type Loadable } from "../../components/States";
import { DataTable, type Pager } from "../../components/Table";
import { dateTime, money } from "../../components/format";
import { usePageHeading } from "../../components/hooks";

export interface TenantsPageViewProps {
  page: Loadable<AdminTenantPage>;
  draft: string;
  onDraft: (v: string) => void;
  onApply: () => void;
  pager: Pager;
}

export function TenantsPageView(p: TenantsPageViewProps) {
  const h = usePageHeading("Tenants");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Tenants
      </h1>
      <form
        className="card row"
        style={{ marginBottom: 16 }}
        aria-label="Filters"
        onSubmit={(e) => {
          e.preventDefault();
          p.onApply();
        }}
      >
        <Field label="Name or slug contains">
          {(a) => <input {...a} value={p.draft} onChange={(e) => p.onDraft(e.target.value)} />}
        </Field>
        <div className="field">
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </form>
      <StateView
        state={p.page}
        what="tenants"
        isEmpty={(d) => d.tenants.length === 0}
        empty={<Empty title="No tenants match" />}
      >
        {(d) => (
          <DataTable
            caption="Tenants"
            rows={d.tenants}
            rowKey={(t) => t.id}
            pager={p.pager}
            columns={[
              {
                header: "Name",
                cell: (t) => (
                  <Link to={`/admin/tenants/${t.id}`} aria-label={`Tenant ${t.name}`} className="entry-name">
                    {t.name}
                  </Link>
                ),
              },
              { header: "Slug", cell: (t) => <span className="mono">{t.slug}</span> },
              { header: "Members", numeric: true, cell: (t) => t.members },
              { header: "Balance", numeric: true, cell: (t) => money(t.balance_minor, t.currency) },
              { header: "Live allocations", numeric: true, cell: (t) => t.live_allocations },
              { header: "Created", cell: (t) => dateTime(t.created_at) },
            ]}
          />
        )}
      </StateView>
    </section>
  );
}
