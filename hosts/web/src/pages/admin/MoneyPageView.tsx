import { IdLink } from "../../components/IdLink";
import type {
  LedgerEntry,
  PaymentSession,
  PaymentSessionPage,
  PaymentSessionStatus,
  RefundRequest,
  RefundRequestPage,
  RefundRequestStatus,
} from "../../api/types";
import { ActionButton, Field, StateBadge } from "../../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable, type Pager } from "../../components/Table";
import { dateTime, money, shortId } from "../../components/format";
import { usePageHeading } from "../../components/hooks";
import { fieldError } from "../../api/errors";

export interface MoneyForm {
  tenant_id: string;
  amount: string;
  reason: string;
  credit_entry_id: string;
}

export interface MoneyPageViewProps {
  currency: string;
  /** The tenant and credit a Refund link of the tenant's ledger, or a payment session's Refund, brought (both refund forms hold them). */
  prefilled?: MoneyForm;
  /** Refund on a credited payment session: both refund forms take its tenant and credit. */
  onRefundSession: (s: PaymentSession) => void;
  credit: MoneyForm;
  onCredit: (f: MoneyForm) => void;
  onSubmitCredit: () => void;
  crediting: boolean;
  creditError: unknown;
  credited?: LedgerEntry;
  refund: MoneyForm;
  onRefund: (f: MoneyForm) => void;
  onSubmitRefund: () => void;
  refunding: boolean;
  refundError: unknown;
  refunded?: { amount_minor: number; refunds: LedgerEntry[] };
  provider: MoneyForm;
  onProvider: (f: MoneyForm) => void;
  onSubmitProvider: () => void;
  providing: boolean;
  providerError: unknown;
  provided?: RefundRequest;
  refundRequests: Loadable<RefundRequestPage>;
  refundRequestStatus: RefundRequestStatus | undefined;
  onRefundRequestStatus: (s: RefundRequestStatus | undefined) => void;
  refundRequestsPager: Pager;
  sessions: Loadable<PaymentSessionPage>;
  sessionStatus: PaymentSessionStatus | undefined;
  onSessionStatus: (s: PaymentSessionStatus | undefined) => void;
  sessionsPager: Pager;
  /** Tenants whose name or slug matches what was last typed in a tenant field: picked, they fill in the id. */
  tenantOptions: { id: string; name: string; slug: string }[];
}

/** The id of the one datalist every tenant field suggests from. */
const TENANT_OPTIONS = "tenant-options";

function MoneyFields({
  form,
  onChange,
  error,
  currency,
  withCredit,
  creditRequired,
}: {
  form: MoneyForm;
  onChange: (f: MoneyForm) => void;
  error: unknown;
  currency: string;
  withCredit?: boolean;
  creditRequired?: boolean;
}) {
  return (
    <>
      <Field
        label="Tenant id"
        hint="Type a name or slug to pick the tenant, or paste its id."
        error={fieldError(error, "tenant_id")}
      >
        {(f) => (
          <input
            {...f}
            list={TENANT_OPTIONS}
            autoComplete="off"
            value={form.tenant_id}
            onChange={(e) => onChange({ ...form, tenant_id: e.target.value })}
            required
          />
        )}
      </Field>
      <Field label={`Amount (${currency.toUpperCase()})`} error={fieldError(error, "amount_minor")}>
        {(f) => (
          <input
            {...f}
            inputMode="decimal"
            value={form.amount}
            onChange={(e) => onChange({ ...form, amount: e.target.value })}
            required
            pattern="[0-9]+([.][0-9]{1,2})?"
          />
        )}
      </Field>
      <Field
        label="Reason"
        error={fieldError(error, "reason")}
        hint="Recorded with the entry and in the audit log."
      >
        {(f) => (
          <input
            {...f}
            value={form.reason}
            onChange={(e) => onChange({ ...form, reason: e.target.value })}
            required
            maxLength={500}
          />
        )}
      </Field>
      {withCredit && (
        <Field
          label={creditRequired ? "Credit entry id" : "Credit entry id (optional)"}
          error={fieldError(error, "credit_entry_id")}
          hint={
            creditRequired
              ? "The ledger credit the payment made: Refund on its row of the tenant's ledger (Tenants, then the tenant) fills it in."
              : "Empty: the newest refundable credits first."
          }
        >
          {(f) => (
            <input
              {...f}
              value={form.credit_entry_id}
              onChange={(e) => onChange({ ...form, credit_entry_id: e.target.value })}
              required={creditRequired}
            />
          )}
        </Field>
      )}
    </>
  );
}

export function MoneyPageView(p: MoneyPageViewProps) {
  const h = usePageHeading("Credits and refunds");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Credits and refunds
      </h1>
      <datalist id={TENANT_OPTIONS}>
        {p.tenantOptions.map((t) => (
          <option key={t.id} value={t.id} label={`${t.name} (${t.slug})`} />
        ))}
      </datalist>
      {p.prefilled && (
        <p className="banner info" data-testid="refund-prefilled" id="refund-prefilled">
          Credit <code className="entry-name">{p.prefilled.credit_entry_id}</code> of tenant{" "}
          <code className="entry-name">{p.prefilled.tenant_id}</code> is filled in below: refund the payment
          through the provider, or record a refund in the ledger only.
        </p>
      )}
      <div className="cards">
        <form
          className="card"
          onSubmit={(e) => (e.preventDefault(), p.onSubmitCredit())}
          aria-labelledby="credit-h"
        >
          <h2 id="credit-h" style={{ marginTop: 0 }}>
            Credit a tenant
          </h2>
          <MoneyFields form={p.credit} onChange={p.onCredit} error={p.creditError} currency={p.currency} />
          <ActionError error={p.creditError} />
          {p.credited && (
            <p role="status">
              Credited {money(p.credited.amount_minor, p.credited.currency)} (entry{" "}
              <span className="mono">{shortId(p.credited.id)}</span>).
            </p>
          )}
          <ActionButton type="submit" className="primary" pending={p.crediting}>
            Credit tenant
          </ActionButton>
        </form>
        <form
          className="card"
          onSubmit={(e) => (e.preventDefault(), p.onSubmitRefund())}
          aria-labelledby="refund-h"
        >
          <h2 id="refund-h" style={{ marginTop: 0 }}>
            Refund credits
          </h2>
          <p className="muted">In the ledger only, for money returned outside the platform.</p>
          <MoneyFields
            form={p.refund}
            onChange={p.onRefund}
            error={p.refundError}
            currency={p.currency}
            withCredit
          />
          <ActionError error={p.refundError} />
          {p.refunded && (
            <p role="status">
              Refunded {money(p.refunded.amount_minor, p.currency)} in {p.refunded.refunds.length} entr
              {p.refunded.refunds.length === 1 ? "y" : "ies"}.
            </p>
          )}
          <ActionButton type="submit" pending={p.refunding}>
            Record refund
          </ActionButton>
        </form>
        <form
          className="card"
          onSubmit={(e) => (e.preventDefault(), p.onSubmitProvider())}
          aria-labelledby="provider-h"
        >
          <h2 id="provider-h" style={{ marginTop: 0 }}>
            Refund a payment
          </h2>
          <p className="muted">
            Through the payment provider: the money goes back to the card, and the ledger refund is posted
            once the provider confirms.
          </p>
          <MoneyFields
            form={p.provider}
            onChange={p.onProvider}
            error={p.providerError}
            currency={p.currency}
            withCredit
            creditRequired
          />
          <ActionError error={p.providerError} />
          {p.provided && (
            <p role="status">
              Refund of {money(p.provided.amount_minor, p.provided.currency)}: {p.provided.status}.
            </p>
          )}
          <ActionButton type="submit" pending={p.providing}>
            Refund payment
          </ActionButton>
        </form>
      </div>
      <h2>Refund requests</h2>
      <div className="toolbar">
        <label className="row" style={{ alignItems: "center" }}>
          <span>Status</span>
          <select
            value={p.refundRequestStatus ?? ""}
            onChange={(e) =>
              p.onRefundRequestStatus((e.target.value || undefined) as RefundRequestStatus | undefined)
            }
          >
            <option value="">All</option>
            <option value="requested">requested</option>
            <option value="submitted">submitted</option>
            <option value="succeeded">succeeded</option>
            <option value="failed">failed</option>
          </select>
        </label>
      </div>
      <StateView
        state={p.refundRequests}
        what="refund requests"
        isEmpty={(d) => d.refund_requests.length === 0}
        empty={<Empty title="No refund requests" />}
      >
        {(d) => (
          <DataTable
            caption="Refund requests"
            rows={d.refund_requests}
            rowKey={(r) => r.id}
            pager={p.refundRequestsPager}
            columns={[
              { header: "When", cell: (r) => dateTime(r.created_at) },
              {
                header: "Tenant",
                cell: (r) => <IdLink to={`/admin/tenants/${r.tenant_id}`} id={r.tenant_id} what="Tenant" />,
              },
              { header: "Status", cell: (r) => <StateBadge state={r.status} /> },
              { header: "Amount", numeric: true, cell: (r) => money(r.amount_minor, r.currency) },
              {
                header: "Reason",
                cell: (r) => r.reason + (r.failure_reason ? ` — ${r.failure_reason}` : ""),
              },
            ]}
          />
        )}
      </StateView>
      <h2>Payment sessions</h2>
      <div className="toolbar">
        <label className="row" style={{ alignItems: "center" }}>
          <span>Status</span>
          <select
            value={p.sessionStatus ?? ""}
            onChange={(e) =>
              p.onSessionStatus((e.target.value || undefined) as PaymentSessionStatus | undefined)
            }
          >
            <option value="">All</option>
            <option value="initiated">initiated</option>
            <option value="credited">credited</option>
            <option value="failed_reconcile">failed reconcile</option>
            <option value="expired">expired</option>
          </select>
        </label>
      </div>
      <StateView
        state={p.sessions}
        what="payment sessions"
        isEmpty={(d) => d.sessions.length === 0}
        empty={<Empty title="No payment sessions" />}
      >
        {(d) => (
          <DataTable
            caption="Payment sessions"
            rows={d.sessions}
            rowKey={(s) => s.id}
            pager={p.sessionsPager}
            columns={[
              { header: "When", cell: (s) => dateTime(s.created_at) },
              {
                header: "Tenant",
                cell: (s) => <IdLink to={`/admin/tenants/${s.tenant_id}`} id={s.tenant_id} what="Tenant" />,
              },
              { header: "Status", cell: (s) => <StateBadge state={s.status} /> },
              { header: "Provider", cell: (s) => s.provider },
              { header: "Amount", numeric: true, cell: (s) => money(s.amount_minor, s.currency) },
              {
                header: "Action",
                cell: (s) =>
                  s.credit_entry_id ? (
                    <button
                      type="button"
                      aria-label={`Refund the payment of ${money(s.amount_minor, s.currency)} of ${dateTime(s.created_at)}`}
                      onClick={() => p.onRefundSession(s)}
                    >
                      Refund
                    </button>
                  ) : null,
              },
            ]}
          />
        )}
      </StateView>
    </section>
  );
}
