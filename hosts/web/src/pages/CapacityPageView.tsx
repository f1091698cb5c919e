import { Link } from "react-router";
import type { Node, SKU } from "../api/types";
import { DataTable } from "../components/Table";
import { Empty, StateView, type Loadable } from "../components/States";
import { money } from "../components/format";
import { usePageHeading } from "../components/hooks";

export interface CapacityPageViewProps {
  skus: Loadable<SKU[]>;
  nodes: Loadable<Node[]>;
}

export function CapacityPageView({ skus, nodes }: CapacityPageViewProps) {
  const h = usePageHeading("Capacity");
  return (
    <section>
      <div className="page-head">
        <h1 ref={h} tabIndex={-1}>
          Capacity
        </h1>
        <Link className="button primary" to="/allocations/new">
          Request a node
        </Link>
      </div>
      <p className="muted">
        Node types, their price per hour for the whole node, and how many are free right now.
      </p>
      <StateView
        state={skus}
        what="node types"
        isEmpty={(d) => d.length === 0}
        empty={<Empty title="No node types yet">The operators have not published any node types.</Empty>}
      >
        {(rows) => (
          <DataTable
            caption="Node types"
            rows={rows}
            rowKey={(s) => s.id}
            columns={[
              { header: "Type", cell: (s) => <strong>{s.name}</strong> },
              { header: "GPUs", cell: (s) => `${s.gpu_count} × ${s.gpu_model} (${s.gpu_memory_gib} GiB)` },
              { header: "CPU / memory", cell: (s) => `${s.cpu_cores} cores / ${s.memory_gib} GiB` },
              {
                header: "Price per hour",
                numeric: true,
                cell: (s) => money(s.hourly_price_minor, s.currency),
              },
              {
                header: "Free now",
                numeric: true,
                cell: (s) => <span aria-label={`${s.available} free`}>{s.available}</span>,
              },
              {
                header: "Action",
                cell: (s) =>
                  s.available > 0 ? (
                    <Link
                      to={`/allocations/new?sku=${encodeURIComponent(s.id)}`}
                      aria-label={`Request ${s.name}`}
                    >
                      Request
                    </Link>
                  ) : (
                    <span className="muted">None free</span>
                  ),
              },
            ]}
          />
        )}
      </StateView>
      <h2>Fleet</h2>
      <StateView
        state={nodes}
        what="the fleet"
        isEmpty={(d) => d.length === 0}
        empty={<Empty title="No nodes online">No node is enrolled yet.</Empty>}
      >
        {(rows) => {
          const by = new Map<string, number>();
          for (const n of rows) by.set(n.state, (by.get(n.state) ?? 0) + 1);
          return (
            <ul className="row" aria-label="Nodes by state" style={{ listStyle: "none", padding: 0 }}>
              {[...by.entries()].map(([state, count]) => (
                <li key={state} className="card">
                  <span className="stat">{count}</span> <span className="muted">{state}</span>
                </li>
              ))}
            </ul>
          );
        }}
      </StateView>
    </section>
  );
}
