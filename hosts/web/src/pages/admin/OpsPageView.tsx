import { Link } from "react-router";
import type { OpsEntry, OpsView, Runbook } from "../../api/types";
import { ActionButton, Field, StateBadge } from "../../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable } from "../../components/Table";
import { dateTime } from "../../components/format";
import { usePageHeading } from "../../components/hooks";
import { runbookHref } from "./runbookLinks";

export interface OpsPageViewProps {
  ops: Loadable<OpsView>;
  runbooks: Runbook[];
  stuckAfter: number;
  onStuckAfter: (m: number) => void;
  onRetry: (eventId: string) => void;
  retrying?: string;
  retryError: unknown;
  retryErrorId?: string;
}

/**
 * A runbook: a link to its section on the runbooks screen for the
 * platform's runbook (doc/runbook.md), a link out when the URL is
 * absolute, else its title and where to find it.
 */
function RunbookRef({ id, runbooks }: { id?: string; runbooks: Runbook[] }) {
  if (!id) return <>—</>;
  const rb = runbooks.find((r) => r.id === id);
  if (!rb) return <code>{id}</code>;
  const here = runbookHref(rb.url);
  if (here) return <Link to={here}>Runbook: {rb.title}</Link>;
  if (/^https?:\/\//.test(rb.url))
    return (
      <a href={rb.url} target="_blank" rel="noopener noreferrer">
        Runbook: {rb.title}
      </a>
    );
  return (
    <span>
      Runbook: {rb.title} <code className="entry-name">{rb.url}</code>
    </span>
  );
}

function Counts({ title, rows }: { title: string; rows: { name: string; count: number }[] }) {
  return (
    <div className="card">
      <h3 style={{ marginTop: 0 }}>{title}</h3>
      {rows.length === 0 ? (
        <p className="muted">None</p>
      ) : (
        <dl className="kv">
          {rows.map((r) => (
            <div key={r.name} style={{ display: "contents" }}>
              <dt>{r.name.replace("_", " ")}</dt>
              <dd>{r.count}</dd>
            </div>
          ))}
        </dl>
      )}
    </div>
  );
}

export function OpsPageView(p: OpsPageViewProps) {
  const h = usePageHeading("Ops");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Ops
      </h1>
      <form className="toolbar" aria-label="Thresholds" onSubmit={(e) => e.preventDefault()}>
        <Field label="Stuck after (minutes)">
          {(a) => (
            <input
              {...a}
              type="number"
              min={1}
              max={10080}
              value={p.stuckAfter}
              onChange={(e) => {
                const n = Number(e.target.value);
                if (Number.isInteger(n) && n >= 1 && n <= 10080) p.onStuckAfter(n);
              }}
            />
          )}
        </Field>
      </form>
      <StateView state={p.ops} what="the ops view">
        {(o) => {
          const degraded = o.entries.filter((e) => e.status === "degraded");
          return (
            <>
              <p
                role="status"
                className={`banner ${degraded.length ? "warning" : "success"}`}
                data-testid="ops-summary"
              >
                {degraded.length
                  ? `${degraded.length} of ${o.entries.length} checks degraded.`
                  : `All ${o.entries.length} checks ok.`}{" "}
                <span className="muted">As of {dateTime(o.at)}.</span>
              </p>
              <DataTable<OpsEntry>
                caption="Checks"
                rows={[...degraded, ...o.entries.filter((e) => e.status !== "degraded")]}
                rowKey={(e) => e.name}
                columns={[
                  { header: "Check", cell: (e) => <code className="entry-name">{e.name}</code> },
                  { header: "Status", cell: (e) => <StateBadge state={e.status} /> },
                  { header: "Value", numeric: true, cell: (e) => e.value },
                  { header: "Detail", cell: (e) => e.detail || "—" },
                  {
                    header: "What to do",
                    cell: (e) =>
                      e.status === "degraded" ? <RunbookRef id={e.runbook} runbooks={p.runbooks} /> : "—",
                  },
                ]}
              />
              <div className="cards" style={{ marginTop: 16 }}>
                <Counts title="Nodes by state" rows={o.nodes_by_state} />
                <Counts title="Nodes by health" rows={o.nodes_by_health} />
                <Counts title="Allocations by state" rows={o.allocations_by_state} />
              </div>
              <h2>Failed events</h2>
              {o.failed_events.length === 0 ? (
                <Empty title="No failed events" />
              ) : (
                <DataTable
                  caption="Failed events"
                  rows={o.failed_events}
                  rowKey={(e) => e.id}
                  columns={[
                    { header: "Subject", cell: (e) => <code className="entry-name">{e.subject}</code> },
                    { header: "Occurred", cell: (e) => dateTime(e.occurred_at) },
                    { header: "Tries", numeric: true, cell: (e) => e.retry_count },
                    { header: "Last error", cell: (e) => <span className="entry-name">{e.last_error}</span> },
                    {
                      header: "Action",
                      cell: (e) => (
                        <>
                          <ActionButton
                            onClick={() => p.onRetry(e.id)}
                            pending={p.retrying === e.id}
                            aria-label={`Retry event ${e.id}`}
                          >
                            Retry
                          </ActionButton>
                          {p.retryErrorId === e.id && <ActionError error={p.retryError} />}
                        </>
                      ),
                    },
                  ]}
                />
              )}
              <h2>Consumers</h2>
              {o.consumers.length === 0 ? (
                <Empty title="No consumer lag reported" />
              ) : (
                <DataTable
                  caption="Consumers"
                  rows={o.consumers}
                  rowKey={(c) => c.stream + "/" + c.durable}
                  columns={[
                    { header: "Stream", cell: (c) => c.stream },
                    { header: "Consumer", cell: (c) => <code>{c.durable}</code> },
                    { header: "Pending", numeric: true, cell: (c) => c.pending },
                    { header: "Unacked", numeric: true, cell: (c) => c.ack_pending },
                    { header: "Redelivered", numeric: true, cell: (c) => c.redelivered },
                  ]}
                />
              )}
            </>
          );
        }}
      </StateView>
    </section>
  );
}
