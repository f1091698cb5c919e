import { Link } from "react-router";
import type { AdminTenantDetail, LedgerEntry, LedgerPage, SKU, TenantPolicy } from "../../api/types";
import { ActionButton } from "../../components/Controls";
import { LedgerTable } from "../../components/LedgerTable";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable, type Pager } from "../../components/Table";
import { dateTime, money } from "../../components/format";
import { usePageHeading } from "../../components/hooks";
import { BalanceCard, LiveAllocations } from "./UserPageView";
import { UserStatus } from "./UsersPageView";

export interface TenantPageViewProps {
  detail: Loadable<AdminTenantDetail>;
  policies: Loadable<TenantPolicy[]>;
  skus: SKU[];
  ledger: Loadable<LedgerPage>;
  ledgerPager: Pager;
  drafts: Record<string, string>;
  onDraft: (key: string, value: string) => void;
  onSave: (key: string) => void;
  onReset: (key: string) => void;
  busyKey?: string;
  error: unknown;
  errorKey?: string;
}

/** The credits-and-refunds screen with this tenant and credit filled in. */
export function refundHref(tenantId: string, creditEntryId: string): string {
  return (
    "/admin/money?" + new URLSearchParams({ tenant_id: tenantId, credit_entry_id: creditEntryId }).toString()
  );
}

export function TenantPageView(p: TenantPageViewProps) {
  const name = p.detail.status === "success" ? p.detail.data.tenant.name : "Tenant";
  const tenantId = p.detail.status === "success" ? p.detail.data.tenant.id : "";
  const h = usePageHeading(name);
  return (
    <section>
      <p>
        <Link to="/admin/tenants">← Tenants</Link>
      </p>
      <StateView state={p.detail} what="the tenant">
        {(d) => (
          <>
            <h1 ref={h} tabIndex={-1} className="entry-name">
              {d.tenant.name}
            </h1>
            <div className="cards">
              <div className="card">
                <dl className="kv">
                  <dt>Slug</dt>
                  <dd className="mono">{d.tenant.slug}</dd>
                  <dt>Tenant id</dt>
                  <dd className="mono">{d.tenant.id}</dd>
                  <dt>Members</dt>
                  <dd>{d.tenant.members}</dd>
                  <dt>Created</dt>
                  <dd>{dateTime(d.tenant.created_at)}</dd>
                </dl>
                <p style={{ marginBottom: 0 }}>
                  <Link to={`/admin/audit?tenant_id=${encodeURIComponent(d.tenant.id)}`}>Its audit log</Link>
                  {" · "}
                  <Link to={`/admin/money?tenant_id=${encodeURIComponent(d.tenant.id)}`}>
                    Credit or refund
                  </Link>
                </p>
              </div>
              <BalanceCard b={d.balance} />
            </div>
            <h2>Members</h2>
            {d.members.length === 0 ? (
              <Empty title="No members" />
            ) : (
              <DataTable
                caption="Members of the tenant"
                rows={d.members}
                rowKey={(m) => m.user.id}
                columns={[
                  {
                    header: "Email",
                    cell: (m) => (
                      <Link to={`/admin/users/${m.user.id}`} className="entry-name">
                        {m.user.email}
                      </Link>
                    ),
                  },
                  { header: "Role", cell: (m) => m.role },
                  { header: "Status", cell: (m) => <UserStatus u={m.user} /> },
                ]}
              />
            )}
            <h2>Projects</h2>
            {d.projects.length === 0 ? (
              <Empty title="No projects" />
            ) : (
              <DataTable
                caption="Projects of the tenant"
                rows={d.projects}
                rowKey={(r) => r.id}
                columns={[
                  { header: "Project", cell: (r) => r.name },
                  { header: "Id", cell: (r) => <span className="mono">{r.id}</span> },
                ]}
              />
            )}
            <h2>Live allocations</h2>
            <LiveAllocations
              rows={d.live_allocations}
              skus={p.skus}
              caption="Live allocations of the tenant"
            />
          </>
        )}
      </StateView>
      {p.detail.status === "success" && (
        <>
          <h2>Ledger</h2>
          <p className="muted">
            Newest first. Refund on a credit (money a payment brought in) with money left to refund within the
            refund window opens the refund forms with the tenant and the credit filled in.
          </p>
          <StateView
            state={p.ledger}
            what="the tenant's ledger"
            isEmpty={(l) => l.entries.length === 0}
            empty={
              <Empty title="No ledger entries">
                Top-ups, usage debits, credits and refunds are listed here.
              </Empty>
            }
          >
            {(l) => (
              <LedgerTable
                caption="Ledger of the tenant"
                entries={l.entries}
                pager={p.ledgerPager}
                action={(e) => <RefundAction tenantId={tenantId} e={e} />}
              />
            )}
          </StateView>
          <h2>Policy overrides</h2>
          <p className="muted">
            The keys that may differ per tenant. An override wins over the platform value until it is reset;
            every change is audited.
          </p>
          <StateView state={p.policies} what="the tenant's policies">
            {(rows) => (
              <DataTable
                caption="Tenant policies"
                rows={rows}
                rowKey={(r) => r.key}
                columns={[
                  {
                    header: "Key",
                    cell: (r) => (
                      <>
                        <code>{r.key}</code>
                        <div className="muted">{r.description}</div>
                      </>
                    ),
                  },
                  { header: "Platform", cell: (r) => <code>{r.default}</code> },
                  {
                    header: "This tenant",
                    cell: (r) => {
                      const v = p.drafts[r.key] ?? r.value;
                      return (
                        <form
                          className="row"
                          onSubmit={(e) => {
                            e.preventDefault();
                            p.onSave(r.key);
                          }}
                        >
                          <input
                            aria-label={`Tenant value of ${r.key}`}
                            value={v}
                            onChange={(e) => p.onDraft(r.key, e.target.value)}
                            size={12}
                          />
                          <ActionButton
                            type="submit"
                            pending={p.busyKey === r.key}
                            disabled={v === r.value}
                            aria-label={`Override ${r.key}`}
                          >
                            Override
                          </ActionButton>
                          {r.overridden && (
                            <button
                              type="button"
                              onClick={() => p.onReset(r.key)}
                              aria-label={`Reset ${r.key}`}
                            >
                              Reset
                            </button>
                          )}
                          {r.overridden && <span className="badge">overridden</span>}
                          {p.errorKey === r.key && <ActionError error={p.error} />}
                        </form>
                      );
                    },
                  },
                ]}
              />
            )}
          </StateView>
        </>
      )}
    </section>
  );
}

/**
 * Refund on a credit with money left to refund (the API's refundable_minor:
 * the credit less its refunds, done or in flight, within the refund window);
 * a credit with none left says why it has no Refund.
 */
function RefundAction({ tenantId, e }: { tenantId: string; e: LedgerEntry }) {
  if (e.type !== "credit" || e.refundable_minor === undefined) return <>—</>;
  if (e.refundable_minor === 0) return <span className="muted">Nothing left to refund</span>;
  const left = money(e.refundable_minor, e.currency);
  return (
    <>
      <Link to={refundHref(tenantId, e.id)} aria-label={`Refund credit ${e.id}, ${left} left`}>
        Refund
      </Link>{" "}
      <span className="muted">{left} left</span>
    </>
  );
}
