import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import {
  adminTenantsQuery,
  creditMutation,
  paymentSessionsQuery,
  refundMutation,
  refundRequestsQuery,
  requestRefundMutation,
} from "../../api/queries/admin";
import { useSearchParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { balanceQuery } from "../../api/queries/billing";
import type { PaymentSessionStatus, RefundRequestStatus } from "../../api/types";
import { loadable } from "../../components/States";
import { useCursorPages, useIdempotencyKey } from "../../components/hooks";
import { useAnnounce } from "../../components/Announcer";
import { toMinor } from "../../components/format";
import { MoneyPageView, type MoneyForm } from "./MoneyPageView";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const empty: MoneyForm = { tenant_id: "", amount: "", reason: "", credit_entry_id: "" };

export function MoneyPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const balance = useQuery(balanceQuery());
  const currency = balance.data?.currency ?? "usd";
  // The tenant screen links here with ?tenant_id= (and, from Refund on a
  // credit of its ledger, &credit_entry_id=: both refund forms start with it).
  const [params] = useSearchParams();
  const [start] = useState<MoneyForm>(() => ({
    ...empty,
    tenant_id: params.get("tenant_id") ?? "",
    credit_entry_id: params.get("credit_entry_id") ?? "",
  }));
  const [credit, setCredit] = useState<MoneyForm>({ ...start, credit_entry_id: "" });
  const [refund, setRefund] = useState<MoneyForm>(start);
  const [provider, setProvider] = useState<MoneyForm>(start);
  // What a Refund link (the tenant's ledger) or a payment session's Refund filled in.
  const [prefilled, setPrefilled] = useState<MoneyForm | undefined>(
    start.tenant_id && start.credit_entry_id ? start : undefined,
  );
  const providerKey = useIdempotencyKey(provider);
  const doProvider = useMutation(requestRefundMutation(qc));
  const [rrStatus, setRrStatus] = useState<RefundRequestStatus | undefined>();
  const rrPages = useCursorPages();
  const refundRequests = useQuery({
    ...refundRequestsQuery(rrStatus, undefined, rrPages.cursor),
    placeholderData: (p) => p,
  });
  const creditKey = useIdempotencyKey(credit);
  const refundKey = useIdempotencyKey(refund);
  const doCredit = useMutation(creditMutation(qc));
  const doRefund = useMutation(refundMutation(qc));
  const [status, setStatus] = useState<PaymentSessionStatus | undefined>();
  const pages = useCursorPages();
  const sessions = useQuery({ ...paymentSessionsQuery(status, pages.cursor), placeholderData: (p) => p });
  // What was last typed in a tenant field, unless it is already an id: the tenants it names are offered.
  const typed = [credit, refund, provider].map((f) => f.tenant_id.trim());
  const [lastTyped, setLastTyped] = useState("");
  const search = typed.includes(lastTyped) && !UUID.test(lastTyped) ? lastTyped : "";
  const tenants = useQuery({
    ...adminTenantsQuery(search),
    enabled: search.length >= 2,
    placeholderData: (p) => p,
  });
  const tracking =
    (set: (f: MoneyForm) => void) =>
    (f: MoneyForm): void => {
      setLastTyped(f.tenant_id.trim());
      set(f);
    };
  return (
    <MoneyPageView
      currency={currency}
      prefilled={prefilled}
      onRefundSession={(s) => {
        const f = { ...empty, tenant_id: s.tenant_id, credit_entry_id: s.credit_entry_id ?? "" };
        setRefund(f);
        setProvider(f);
        setPrefilled(f);
        // The refund forms are above the sessions table.
        requestAnimationFrame(() =>
          document.getElementById("refund-prefilled")?.scrollIntoView({ block: "start" }),
        );
      }}
      credit={credit}
      onCredit={tracking(setCredit)}
      onSubmitCredit={() =>
        doCredit.mutate(
          {
            tenant_id: credit.tenant_id.trim(),
            amount_minor: toMinor(credit.amount),
            currency,
            reason: credit.reason,
            key: creditKey.key,
          },
          { onSuccess: () => (setCredit(empty), creditKey.reset(), announce("Tenant credited.")) },
        )
      }
      crediting={doCredit.isPending}
      creditError={doCredit.error}
      credited={doCredit.data}
      refund={refund}
      onRefund={tracking(setRefund)}
      onSubmitRefund={() =>
        doRefund.mutate(
          {
            tenant_id: refund.tenant_id.trim(),
            amount_minor: toMinor(refund.amount),
            reason: refund.reason,
            credit_entry_id: refund.credit_entry_id.trim(),
            key: refundKey.key,
          },
          { onSuccess: () => (setRefund(empty), refundKey.reset(), announce("Refund recorded.")) },
        )
      }
      refunding={doRefund.isPending}
      refundError={doRefund.error}
      refunded={doRefund.data}
      provider={provider}
      onProvider={tracking(setProvider)}
      onSubmitProvider={() =>
        doProvider.mutate(
          {
            tenant_id: provider.tenant_id.trim(),
            credit_entry_id: provider.credit_entry_id.trim(),
            amount_minor: toMinor(provider.amount),
            reason: provider.reason,
            key: providerKey.key,
          },
          {
            onSuccess: (r) => {
              setProvider(empty);
              providerKey.reset();
              announce(`Refund request ${r.status}.`);
            },
          },
        )
      }
      providing={doProvider.isPending}
      providerError={doProvider.error}
      provided={doProvider.data}
      refundRequests={loadable(refundRequests)}
      refundRequestStatus={rrStatus}
      onRefundRequestStatus={(s) => (setRrStatus(s), rrPages.reset())}
      refundRequestsPager={rrPages.pager(refundRequests.data?.next_cursor)}
      sessions={loadable(sessions)}
      sessionStatus={status}
      onSessionStatus={(s) => (setStatus(s), pages.reset())}
      sessionsPager={pages.pager(sessions.data?.next_cursor)}
      tenantOptions={search ? (tenants.data?.tenants ?? []) : []}
    />
  );
}
export { MoneyPage as Component };
