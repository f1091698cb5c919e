import { lazy, Suspense } from "react";
import { Link } from "react-router";
import type { Allocation, SKU } from "../api/types";
import { ConfirmDialog, CopyButton, StateBadge } from "../components/Controls";
import { Loading, StateView, type Loadable } from "../components/States";
import {
  billedSeconds,
  billingStopped,
  costSoFar,
  dateTime,
  duration,
  money,
  RELEASE_REASON_TEXT,
  shortId,
} from "../components/format";
import { usePageHeading } from "../components/hooks";

const Terminal = lazy(() => import("../components/Terminal").then((m) => ({ default: m.Terminal })));

export interface AllocationPageViewProps {
  allocation: Loadable<Allocation>;
  sku?: SKU;
  now: number;
  canTerminal: boolean;
  projectId: string;
  onRelease: () => Promise<unknown>;
  releasing: boolean;
  releaseError: unknown;
  releaseCooldown: number;
  onDownloadConfig: (a: Allocation) => void;
  /** Screenshots and component tests render without a live terminal. */
  terminalSlot?: React.ReactNode;
}

const STATE_TEXT: Record<string, string> = {
  requested: "Requested: waiting for the node to be prepared.",
  provisioning: "Provisioning: installing your account and keys on the node.",
  active: "Active: the node is yours. Billing runs per second.",
  releasing: "Releasing: ending your processes and removing your account. Billing has stopped.",
  released: "Released. Billing stopped when you asked for the release.",
  failed: "Failed: the node could not be prepared. You were not billed.",
  release_failed: "Release failed: the platform retries; an operator can force it.",
};

export function AllocationPageView(p: AllocationPageViewProps) {
  const h = usePageHeading("Allocation");
  return (
    <section>
      <div className="page-head">
        <h1 ref={h} tabIndex={-1}>
          Allocation
        </h1>
        <Link to="/allocations">All allocations</Link>
      </div>
      <StateView state={p.allocation} what="the allocation">
        {(a) => <Detail {...p} a={a} />}
      </StateView>
    </section>
  );
}

function Detail(p: AllocationPageViewProps & { a: Allocation }) {
  const { a } = p;
  const secs = billedSeconds(a, p.now);
  const stopped = billingStopped(a);
  const live = a.state !== "released" && a.state !== "failed";
  return (
    <>
      <div className="banner info" role="status" aria-live="polite" data-testid="allocation-state">
        <StateBadge state={a.state} /> {STATE_TEXT[a.state]}
        {a.failure_code ? ` (${a.failure_code})` : ""}
      </div>
      <div className="cards">
        <div className="card">
          <dl className="kv">
            <dt>Name</dt>
            <dd className="mono" data-testid="allocation-name">
              {shortId(a.id)}
            </dd>
            <dt>Id</dt>
            <dd className="mono">{a.id}</dd>
            <dt>Type</dt>
            <dd>{p.sku?.name ?? a.sku_id}</dd>
            <dt>Price</dt>
            <dd>{money(a.price_minor, a.currency)} per hour</dd>
            <dt>Requested</dt>
            <dd>{dateTime(a.created_at)}</dd>
            <dt>Active since</dt>
            <dd>{dateTime(a.active_at)}</dd>
            {a.release_requested_at && (
              <>
                <dt>Billing stopped</dt>
                <dd>{dateTime(a.release_requested_at)}</dd>
              </>
            )}
            {a.release_reason && (
              <>
                <dt>Released because</dt>
                <dd data-testid="release-reason">{RELEASE_REASON_TEXT[a.release_reason]}</dd>
              </>
            )}
            {a.released_at && (
              <>
                <dt>Released</dt>
                <dd>{dateTime(a.released_at)}</dd>
              </>
            )}
          </dl>
        </div>
        <div className="card">
          <p className="muted" style={{ margin: 0 }}>
            {stopped ? "Billed" : "Cost so far"}
          </p>
          <p className="stat" style={{ margin: 0 }} data-testid="cost-so-far">
            {money(costSoFar(a.price_minor, secs), a.currency)}
          </p>
          <p className="muted">{a.active_at ? duration(secs) + " of GPU time" : "Not started"}</p>
          {live && a.state !== "releasing" && (
            <ConfirmDialog
              trigger={
                <button type="button" className="danger">
                  Release
                </button>
              }
              title="Release this node?"
              description={
                <p>
                  Every process you started on it ends and your account is removed. Files on the node are
                  lost. Billing stops now.
                </p>
              }
              confirmLabel="Release node"
              onConfirm={p.onRelease}
              pending={p.releasing}
              error={p.releaseError}
              cooldown={p.releaseCooldown}
            />
          )}
        </div>
      </div>
      {a.state === "active" && a.access && (
        <>
          <h2>Connect over SSH</h2>
          <div className="card">
            <pre className="secret" data-testid="ssh-command">
              {a.access.command}
            </pre>
            <div className="row">
              <CopyButton text={a.access.command} label="Copy SSH command" />
              <button type="button" onClick={() => p.onDownloadConfig(a)}>
                Download SSH config entry
              </button>
            </div>
          </div>
          <h2>Browser terminal</h2>
          {p.terminalSlot ??
            (p.canTerminal ? (
              <Suspense fallback={<Loading label="Loading the terminal" />}>
                <Terminal allocationId={a.id} projectId={p.projectId} />
              </Suspense>
            ) : (
              <p className="muted">Only the person who requested this node can open its terminal.</p>
            ))}
        </>
      )}
    </>
  );
}
