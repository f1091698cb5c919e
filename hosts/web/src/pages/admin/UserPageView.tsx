import { Link } from "react-router";
import type { AdminUserDetail, Allocation, BillingBalance, SKU } from "../../api/types";
import { ActionButton, ConfirmDialog, StateBadge } from "../../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable } from "../../components/Table";
import { dateTime, money, shortId } from "../../components/format";
import { usePageHeading } from "../../components/hooks";
import { UserStatus } from "./UsersPageView";

export interface UserPageViewProps {
  detail: Loadable<AdminUserDetail>;
  skus: SKU[];
  isSelf: boolean;
  onSuspend: (suspend: boolean) => Promise<unknown>;
  onSuspendOpen: () => void;
  pending: boolean;
  error: unknown;
  cooldown: number;
}

/** Balance, burn and runway of a tenant (shared by the user and tenant screens). */
export function BalanceCard({ b }: { b: BillingBalance }) {
  return (
    <div className="card" data-testid="tenant-balance">
      <div className="muted">Balance</div>
      <div className="stat">{money(b.balance_minor, b.currency)}</div>
      <div className="muted">
        {b.burn_rate_minor_per_hour > 0
          ? `Burning ${money(b.burn_rate_minor_per_hour, b.currency)} per hour; ${b.runway_text || "runway unknown"}.`
          : "Nothing running."}
      </div>
    </div>
  );
}

/** Live allocations of a user or tenant, linking to the operators' allocation list. */
export function LiveAllocations({
  rows,
  skus,
  caption,
}: {
  rows: Allocation[];
  skus: SKU[];
  caption: string;
}) {
  if (rows.length === 0) return <Empty title="No live allocations" />;
  return (
    <DataTable
      caption={caption}
      rows={rows}
      rowKey={(a) => a.id}
      columns={[
        {
          header: "Allocation",
          cell: (a) => (
            <span className="mono" title={a.id}>
              {shortId(a.id)}
            </span>
          ),
        },
        { header: "Type", cell: (a) => skus.find((s) => s.id === a.sku_id)?.name ?? a.sku_id },
        { header: "State", cell: (a) => <StateBadge state={a.state} /> },
        { header: "Since", cell: (a) => dateTime(a.active_at ?? a.created_at) },
        { header: "Price", numeric: true, cell: (a) => `${money(a.price_minor, a.currency)}/h` },
      ]}
    />
  );
}

export function UserPageView(p: UserPageViewProps) {
  const name = p.detail.status === "success" ? p.detail.data.user.email : "User";
  const h = usePageHeading(name);
  return (
    <section>
      <p>
        <Link to="/admin/users">← Users</Link>
      </p>
      <StateView state={p.detail} what="the user">
        {(d) => {
          const u = d.user;
          const suspended = u.status === "suspended";
          return (
            <>
              <div className="page-head">
                <h1 ref={h} tabIndex={-1} className="entry-name">
                  {u.email}
                </h1>
                {suspended ? (
                  <ActionButton
                    onClick={() => void p.onSuspend(false).catch(() => {})}
                    pending={p.pending}
                    cooldown={p.cooldown}
                  >
                    Reinstate
                  </ActionButton>
                ) : (
                  <ConfirmDialog
                    trigger={
                      <button type="button" className="danger" onClick={p.onSuspendOpen} disabled={p.isSelf}>
                        Suspend
                      </button>
                    }
                    title={`Suspend ${u.email}?`}
                    description={
                      <p>
                        Their sessions and keys are refused from their next request and their live stream
                        ends. Their nodes keep running; release them from All allocations if needed.
                      </p>
                    }
                    confirmLabel="Suspend user"
                    onConfirm={() => p.onSuspend(true)}
                    pending={p.pending}
                    error={p.error}
                    cooldown={p.cooldown}
                  />
                )}
              </div>
              {suspended && <ActionError error={p.error} />}
              {p.isSelf && <p className="muted">This is you: operators cannot suspend themselves.</p>}
              <div className="cards">
                <div className="card">
                  <dl className="kv">
                    <dt>Name</dt>
                    <dd>{u.display_name || "—"}</dd>
                    <dt>Status</dt>
                    <dd data-testid="user-status">
                      <UserStatus u={u} />
                    </dd>
                    <dt>Platform role</dt>
                    <dd>{u.role === "admin" ? "Operator" : "User"}</dd>
                    <dt>Tenant</dt>
                    <dd>
                      {u.tenant_id ? (
                        <Link to={`/admin/tenants/${u.tenant_id}`}>{u.tenant_name || u.tenant_id}</Link>
                      ) : (
                        "—"
                      )}
                      {u.tenant_role && <span className="muted"> ({u.tenant_role})</span>}
                    </dd>
                    <dt>User id</dt>
                    <dd className="mono">{u.id}</dd>
                    <dt>Created</dt>
                    <dd>{dateTime(u.created_at)}</dd>
                  </dl>
                </div>
                <BalanceCard b={d.balance} />
              </div>
              <h2>Projects</h2>
              {d.projects.length === 0 ? (
                <Empty title="No project memberships" />
              ) : (
                <DataTable
                  caption="Project memberships"
                  rows={d.projects}
                  rowKey={(r) => r.id}
                  columns={[
                    { header: "Project", cell: (r) => r.name },
                    { header: "Role", cell: (r) => r.role },
                    { header: "Id", cell: (r) => <span className="mono">{r.id}</span> },
                  ]}
                />
              )}
              <h2>Live allocations</h2>
              <LiveAllocations
                rows={d.live_allocations}
                skus={p.skus}
                caption="Live allocations of the user"
              />
            </>
          );
        }}
      </StateView>
    </section>
  );
}
