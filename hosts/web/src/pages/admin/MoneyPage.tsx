import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { creditMutation, paymentSessionsQuery, refundMutation } from "../../api/queries/admin";
import { balanceQuery } from "../../api/queries/billing";
import type { PaymentSessionStatus } from "../../api/types";
import { loadable } from "../../components/States";
import { useCursorPages, useIdempotencyKey } from "../../components/hooks";
import { useAnnounce } from "../../components/Announcer";
import { toMinor } from "../BillingPage";
import { MoneyPageView, type MoneyForm } from "./MoneyPageView";

const empty: MoneyForm = { tenant_id: "", amount: "", reason: "", credit_entry_id: "" };

export function MoneyPage() {
  const announce = useAnnounce();
  const balance = useQuery(balanceQuery());
  const currency = balance.data?.currency ?? "usd";
  const [credit, setCredit] = useState<MoneyForm>(empty);
  const [refund, setRefund] = useState<MoneyForm>(empty);
  const creditKey = useIdempotencyKey(credit);
  const refundKey = useIdempotencyKey(refund);
  const doCredit = useMutation(creditMutation());
  const doRefund = useMutation(refundMutation());
  const [status, setStatus] = useState<PaymentSessionStatus | undefined>();
  const pages = useCursorPages();
  const sessions = useQuery({ ...paymentSessionsQuery(status, pages.cursor), placeholderData: (p) => p });
  return (
    <MoneyPageView
      currency={currency}
      credit={credit}
      onCredit={setCredit}
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
      onRefund={setRefund}
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
      sessions={loadable(sessions)}
      sessionStatus={status}
      onSessionStatus={(s) => (setStatus(s), pages.reset())}
      sessionsPager={{
        page: pages.page,
        hasPrev: pages.page > 1,
        hasNext: !!sessions.data?.next_cursor,
        onPrev: pages.prev,
        onNext: () => pages.next(sessions.data?.next_cursor),
      }}
    />
  );
}
export { MoneyPage as Component };
