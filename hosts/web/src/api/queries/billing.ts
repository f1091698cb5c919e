import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../client";
import type { LedgerEntry } from "../types";

export const billingKeys = {
  balance: ["billing", "balance"] as const,
  ledger: (cursor?: string) => ["billing", "ledger", cursor ?? ""] as const,
  usage: (cursor?: string) => ["billing", "usage", cursor ?? ""] as const,
  spend: ["billing", "spend"] as const,
};

export function balanceQuery(opts?: { watching?: boolean }) {
  return queryOptions({
    queryKey: billingKeys.balance,
    queryFn: () => unwrap(api.GET("/api/v1/billing/balance")),
    // While a checkout is being confirmed, look every 2 s; else every 30 s.
    refetchInterval: opts?.watching ? 2_000 : 30_000,
  });
}

export function ledgerQuery(cursor?: string) {
  return queryOptions({
    queryKey: billingKeys.ledger(cursor),
    queryFn: () => unwrap(api.GET("/api/v1/billing/ledger", { params: { query: { cursor, limit: 20 } } })),
    refetchInterval: 30_000,
  });
}

export function usageQuery(cursor?: string) {
  return queryOptions({
    queryKey: billingKeys.usage(cursor),
    queryFn: () => unwrap(api.GET("/api/v1/billing/usage", { params: { query: { cursor, limit: 20 } } })),
    refetchInterval: 30_000,
  });
}

/** The newest ledger entries (up to 1,000) for the spend chart. */
export function spendQuery() {
  return queryOptions({
    queryKey: billingKeys.spend,
    queryFn: async () => {
      const out: LedgerEntry[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 5; i++) {
        const page = await unwrap(
          api.GET("/api/v1/billing/ledger", { params: { query: { cursor, limit: 200 } } }),
        );
        out.push(...page.entries);
        cursor = page.next_cursor;
        if (!cursor) break;
      }
      return out;
    },
    refetchInterval: 30_000,
  });
}

export function checkoutMutation() {
  return {
    mutationFn: (v: { amount_minor: number; currency: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/payments/checkout-session", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { amount_minor: v.amount_minor, currency: v.currency },
        }),
      ),
  };
}

export function portalMutation() {
  return { mutationFn: () => unwrap(api.POST("/api/v1/payments/customer-portal-session")) };
}

export function invalidateBilling(qc: QueryClient) {
  void qc.invalidateQueries({ queryKey: ["billing"] });
}
