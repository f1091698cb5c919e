import type { BillingBalance, LedgerEntry, LedgerPage, UsagePage } from "../api/types";
import { ActionButton, Field } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable, type Pager } from "../components/Table";
import { LedgerTable } from "../components/LedgerTable";
import { SpendChart } from "../components/SpendChart";
import { dateTime, duration, money, shortId } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { fieldError } from "../api/errors";

export type CheckoutOutcome =
  | { kind: "none" }
  | { kind: "waiting" }
  | { kind: "credited"; entry: LedgerEntry }
  | { kind: "unconfirmed" }
  | { kind: "cancelled" };

export interface BillingPageViewProps {
  balance: Loadable<BillingBalance>;
  outcome: CheckoutOutcome;
  amount: string;
  onAmount: (v: string) => void;
  onTopUp: () => void;
  toppingUp: boolean;
  topUpError: unknown;
  topUpCooldown: number;
  canPortal: boolean;
  onPortal: () => void;
  portalPending: boolean;
  portalError: unknown;
  spend: Loadable<LedgerEntry[]>;
  usage: Loadable<UsagePage>;
  usagePager: Pager;
  onDownloadUsage: () => void;
  downloadError: unknown;
  ledger: Loadable<LedgerPage>;
  ledgerPager: Pager;
}

const PRESETS = ["10", "25", "100"];

export function BillingPageView(p: BillingPageViewProps) {
  const h = usePageHeading("Billing");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Billing
      </h1>
      <Outcome outcome={p.outcome} />
      <StateView state={p.balance} what="your balance">
        {(b) => (
          <div className="cards">
            <div className="card">
              <p className="muted" style={{ margin: 0 }}>
                Balance
              </p>
              <p className="stat" style={{ margin: 0 }} data-testid="balance">
                {money(b.balance_minor, b.currency)}
              </p>
              <p className="muted" data-testid="runway">
                {b.runway_text
                  ? b.runway_text.charAt(0).toUpperCase() + b.runway_text.slice(1) + "."
                  : "Nothing is running, so nothing is being spent."}
              </p>
              {b.burn_rate_minor_per_hour > 0 && (
                <p className="muted">
                  Spending {money(b.burn_rate_minor_per_hour, b.currency)} per hour now.
                </p>
              )}
            </div>
            <form
              className="card"
              onSubmit={(e) => {
                e.preventDefault();
                p.onTopUp();
              }}
            >
              <h2 style={{ marginTop: 0 }}>Top up</h2>
              <div className="row" role="group" aria-label="Preset amounts" style={{ marginBottom: 8 }}>
                {PRESETS.map((v) => (
                  <button type="button" key={v} aria-pressed={p.amount === v} onClick={() => p.onAmount(v)}>
                    {money(Number(v) * 100, b.currency)}
                  </button>
                ))}
              </div>
              <Field
                label={`Amount (${b.currency.toUpperCase()})`}
                error={fieldError(p.topUpError, "amount_minor")}
                hint="You pay at the payment provider and come back here."
              >
                {(f) => (
                  <input
                    {...f}
                    inputMode="decimal"
                    value={p.amount}
                    onChange={(e) => p.onAmount(e.target.value)}
                    pattern="[0-9]+([.][0-9]{1,2})?"
                    required
                  />
                )}
              </Field>
              <ActionError error={p.topUpError} />
              <div className="row">
                <ActionButton
                  type="submit"
                  className="primary"
                  pending={p.toppingUp}
                  cooldown={p.topUpCooldown}
                >
                  Continue to payment
                </ActionButton>
                {p.canPortal && (
                  <ActionButton onClick={p.onPortal} pending={p.portalPending}>
                    Payment methods and invoices
                  </ActionButton>
                )}
              </div>
              <ActionError error={p.portalError} />
            </form>
          </div>
        )}
      </StateView>

      <h2>Spend over time</h2>
      <div className="card">
        <StateView state={p.spend} what="spend">
          {(entries) => <SpendChart entries={entries} currency={entries[0]?.currency ?? "usd"} />}
        </StateView>
      </div>

      <div className="page-head" style={{ marginTop: 24 }}>
        <h2 style={{ margin: 0 }}>Usage</h2>
        <button type="button" onClick={p.onDownloadUsage}>
          Download usage CSV
        </button>
      </div>
      <ActionError error={p.downloadError} />
      <StateView
        state={p.usage}
        what="usage"
        isEmpty={(u) => u.usage.length === 0}
        empty={<Empty title="No usage yet">Usage appears once a node of yours is active.</Empty>}
      >
        {(u) => (
          <DataTable
            caption="Usage records"
            rows={u.usage}
            rowKey={(r) => r.id}
            pager={p.usagePager}
            columns={[
              { header: "Allocation", cell: (r) => <span className="mono">{shortId(r.allocation_id)}</span> },
              { header: "Project", cell: (r) => r.project_name },
              { header: "Started", cell: (r) => dateTime(r.started_at) },
              { header: "Time", cell: (r) => duration(r.seconds) + (r.state === "open" ? " (running)" : "") },
              { header: "Cost", numeric: true, cell: (r) => money(r.cost_minor, r.currency) },
              { header: "Billed", numeric: true, cell: (r) => money(r.billed_minor, r.currency) },
            ]}
          />
        )}
      </StateView>

      <h2>Ledger</h2>
      <StateView
        state={p.ledger}
        what="the ledger"
        isEmpty={(l) => l.entries.length === 0}
        empty={<Empty title="No entries yet">Top-ups, usage debits and refunds are listed here.</Empty>}
      >
        {(l) => <LedgerTable caption="Ledger entries" entries={l.entries} pager={p.ledgerPager} />}
      </StateView>
    </section>
  );
}

function Outcome({ outcome }: { outcome: CheckoutOutcome }) {
  switch (outcome.kind) {
    case "none":
      return null;
    case "waiting":
      return (
        <div className="banner info" role="status" aria-live="polite" data-testid="checkout-outcome">
          Payment made. Waiting for the payment provider to confirm it…
        </div>
      );
    case "credited":
      return (
        <div className="banner success" role="status" aria-live="polite" data-testid="checkout-outcome">
          Payment received: {money(outcome.entry.amount_minor, outcome.entry.currency)} was added to your
          balance.
        </div>
      );
    case "unconfirmed":
      return (
        <div className="banner warning" role="status" data-testid="checkout-outcome">
          The provider has not confirmed the payment yet. It is added to your balance as soon as it does;
          nothing is charged twice.
        </div>
      );
    case "cancelled":
      return (
        <div className="banner warning" role="status" data-testid="checkout-outcome">
          Checkout cancelled. Nothing was charged.
        </div>
      );
  }
}
