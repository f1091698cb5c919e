import { IdLink } from "../../components/IdLink";
import type { AllocationPage, AllocationState } from "../../api/types";
import { ALLOCATION_STATES } from "../../api/types";
import { ConfirmDialog, StateBadge } from "../../components/Controls";
import { Empty, StateView, type Loadable } from "../../components/States";
import { DataTable, type Pager } from "../../components/Table";
import { dateTime, money, RELEASE_REASON_TEXT, shortId } from "../../components/format";
import { usePageHeading } from "../../components/hooks";

export interface AdminAllocationsPageViewProps {
  page: Loadable<AllocationPage>;
  /** Node names by id; a node missing from it is shown by its short id. */
  nodeNames: ReadonlyMap<string, string>;
  status: AllocationState | undefined;
  onStatus: (s: AllocationState | undefined) => void;
  pager: Pager;
  onForceRelease: (id: string) => Promise<unknown>;
  releasing: boolean;
  releaseError: unknown;
}

export function AdminAllocationsPageView(p: AdminAllocationsPageViewProps) {
  const h = usePageHeading("All allocations");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        All allocations
      </h1>
      <div className="toolbar">
        <label className="row" style={{ alignItems: "center" }}>
          <span>State</span>
          <select
            value={p.status ?? ""}
            onChange={(e) => p.onStatus((e.target.value || undefined) as AllocationState | undefined)}
          >
            <option value="">All</option>
            {ALLOCATION_STATES.map((s) => (
              <option key={s} value={s}>
                {s.replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
      </div>
      <StateView
        state={p.page}
        what="allocations"
        isEmpty={(d) => d.allocations.length === 0}
        empty={<Empty title="No allocations" />}
      >
        {(d) => (
          <DataTable
            caption="Allocations of every tenant"
            rows={d.allocations}
            rowKey={(a) => a.id}
            pager={p.pager}
            columns={[
              {
                header: "Allocation",
                cell: (a) => (
                  <span className="mono" title={a.id}>
                    {shortId(a.id)}
                  </span>
                ),
              },
              {
                header: "User",
                cell: (a) => <IdLink to={`/admin/users/${a.user_id}`} id={a.user_id} what="User" />,
              },
              {
                header: "Node",
                cell: (a) => {
                  if (!a.node_id) return "—";
                  const name = p.nodeNames.get(a.node_id);
                  return (
                    <span className={name ? undefined : "mono"} title={a.node_id}>
                      {name ?? shortId(a.node_id)}
                    </span>
                  );
                },
              },
              { header: "State", cell: (a) => <StateBadge state={a.state} /> },
              { header: "Price", numeric: true, cell: (a) => money(a.price_minor, a.currency) + "/h" },
              {
                header: "Release",
                cell: (a) => (a.release_reason ? RELEASE_REASON_TEXT[a.release_reason] : "—"),
              },
              { header: "Updated", cell: (a) => dateTime(a.updated_at) },
              {
                header: "Action",
                cell: (a) =>
                  a.state === "released" || a.state === "failed" ? (
                    "—"
                  ) : (
                    <ConfirmDialog
                      trigger={
                        <button type="button" aria-label={`Force release ${a.id}`}>
                          Force release
                        </button>
                      }
                      title="Force release this allocation?"
                      description={
                        <p>
                          The tenant's processes on the node end and its billing stops now. This is audited.
                        </p>
                      }
                      confirmLabel="Force release"
                      onConfirm={() => p.onForceRelease(a.id)}
                      pending={p.releasing}
                      error={p.releaseError}
                    />
                  ),
              },
            ]}
          />
        )}
      </StateView>
    </section>
  );
}
