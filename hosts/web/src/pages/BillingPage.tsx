import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { useProject } from "../auth";
import {
  balanceQuery,
  checkoutMutation,
  invalidateBilling,
  ledgerQuery,
  portalMutation,
  spendQuery,
  usageQuery,
} from "../api/queries/billing";
import { download } from "../api/client";
import type { LedgerEntry } from "../api/types";
import { toMinor } from "../components/format";
import { loadable } from "../components/States";
import { useCooldown, useCursorPages, useIdempotencyKey } from "../components/hooks";
import { BillingPageView, type CheckoutOutcome } from "./BillingPageView";

const WATCH_MS = 120_000;

export function BillingPage() {
  const qc = useQueryClient();
  const { isTenantAdmin } = useProject();
  const [params, setParams] = useSearchParams();
  const checkout = params.get("checkout");
  const [returnedAt] = useState(() => Date.now());
  const [timedOut, setTimedOut] = useState(false);
  const [credit, setCredit] = useState<LedgerEntry | undefined>();
  const watching = checkout === "success" && !credit && !timedOut;
  const balance = useQuery(balanceQuery({ watching }));
  const usagePages = useCursorPages();
  const ledgerPages = useCursorPages();
  const usage = useQuery({ ...usageQuery(usagePages.cursor), placeholderData: (p) => p });
  const ledger = useQuery({
    ...ledgerQuery(ledgerPages.cursor),
    placeholderData: (p) => p,
    refetchInterval: watching ? 2_000 : 30_000,
  });
  const spend = useQuery(spendQuery());
  const [amount, setAmount] = useState("25");
  const idem = useIdempotencyKey({ amount });
  const cooldown = useCooldown();
  const top = useMutation({ ...checkoutMutation(), onError: cooldown.trip });
  const portal = useMutation(portalMutation());
  const [downloadError, setDownloadError] = useState<unknown>(null);

  // The provider sends the browser back before or after its webhook lands:
  // look for the credit for up to two minutes.
  const seen = ledger.data?.entries.find(
    (e) => e.type === "credit" && Date.parse(e.created_at) > returnedAt - 10 * 60_000,
  );
  if (watching && seen) {
    // Adjusting state while rendering from data (React's documented pattern).
    setCredit(seen);
  }
  useEffect(() => {
    if (credit) invalidateBilling(qc);
  }, [credit, qc]);
  useEffect(() => {
    if (checkout !== "success") return;
    const t = setTimeout(() => setTimedOut(true), WATCH_MS);
    return () => clearTimeout(t);
  }, [checkout]);

  let outcome: CheckoutOutcome = { kind: "none" };
  if (checkout === "cancelled") outcome = { kind: "cancelled" };
  else if (checkout === "success")
    outcome = credit
      ? { kind: "credited", entry: credit }
      : watching
        ? { kind: "waiting" }
        : { kind: "unconfirmed" };

  const currency = balance.data?.currency ?? "usd";
  return (
    <BillingPageView
      balance={loadable(balance)}
      outcome={outcome}
      amount={amount}
      onAmount={setAmount}
      toppingUp={top.isPending || top.isSuccess}
      topUpError={top.error}
      topUpCooldown={cooldown.secondsLeft}
      onTopUp={() => {
        const minor = toMinor(amount);
        if (!Number.isFinite(minor) || minor <= 0) return;
        top.mutate(
          { amount_minor: minor, currency, key: idem.key },
          {
            onSuccess: (s) => {
              setParams({}, { replace: true });
              location.assign(s.checkout_url);
            },
          },
        );
      }}
      canPortal={isTenantAdmin}
      onPortal={() => portal.mutate(undefined, { onSuccess: (s) => location.assign(s.url) })}
      portalPending={portal.isPending}
      portalError={portal.error}
      spend={loadable(spend)}
      usage={loadable(usage)}
      usagePager={usagePages.pager(usage.data?.next_cursor)}
      onDownloadUsage={() => {
        setDownloadError(null);
        download("/api/v1/billing/usage/csv", "usage.csv").catch(setDownloadError);
      }}
      downloadError={downloadError}
      ledger={loadable(ledger)}
      ledgerPager={ledgerPages.pager(ledger.data?.next_cursor)}
    />
  );
}
export { BillingPage as Component };
