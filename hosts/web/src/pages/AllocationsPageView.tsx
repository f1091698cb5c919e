import { Link } from "react-router";
import type { AllocationPage, AllocationState, SKU } from "../api/types";
import { ALLOCATION_STATES } from "../api/types";
import { DataTable, type Pager } from "../components/Table";
import { Empty, StateView, type Loadable } from "../components/States";
import { StateBadge } from "../components/Controls";
import { billedSeconds, costSoFar, dateTime, money, shortId } from "../components/format";
import { usePageHeading } from "../components/hooks";

export interface AllocationsPageViewProps {
  page: Loadable<AllocationPage>;
  skus: SKU[];
  status: AllocationState | undefined;
  onStatus: (s: AllocationState | undefined) => void;
  pager: Pager;
  now: number;
}

export function AllocationsPageView({ page, skus, status, onStatus, pager, now }: AllocationsPageViewProps) {
  const h = usePageHeading("Allocations");
  const skuName = (id: string) => skus.find((s) => s.id === id)?.name ?? id;
  return (
    <section>
      <div className="page-head">
        <h1 ref={h} tabIndex={-1}>
          Allocations
        </h1>
        <Link className="button primary" to="/allocations/new">
          Request a node
        </Link>
      </div>
      <div className="toolbar">
        <label className="row" style={{ alignItems: "center" }}>
          <span>State</span>
          <select
            value={status ?? ""}
            onChange={(e) => onStatus((e.target.value || undefined) as AllocationState | undefined)}
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
        state={page}
        what="allocations"
        isEmpty={(p) => p.allocations.length === 0}
        empty={
          <Empty title={status ? `No ${status.replace("_", " ")} allocations` : "No allocations yet"}>
            <p>
              <Link to="/allocations/new">Request a node</Link> to get started.
            </p>
          </Empty>
        }
      >
        {(p) => (
          <DataTable
            caption="Allocations of this project"
            rows={p.allocations}
            rowKey={(a) => a.id}
            pager={pager}
            columns={[
              {
                header: "Allocation",
                cell: (a) => (
                  <Link to={`/allocations/${a.id}`} aria-label={`Allocation ${a.id}`}>
                    {shortId(a.id)}
                  </Link>
                ),
              },
              { header: "Type", cell: (a) => skuName(a.sku_id) },
              { header: "State", cell: (a) => <StateBadge state={a.state} /> },
              { header: "Started", cell: (a) => dateTime(a.active_at ?? a.created_at) },
              {
                header: "Billed",
                numeric: true,
                cell: (a) =>
                  a.active_at ? money(costSoFar(a.price_minor, billedSeconds(a, now)), a.currency) : "—",
              },
            ]}
          />
        )}
      </StateView>
    </section>
  );
}
