import { describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { ApiError } from "../../api/errors";
import type { LedgerEntry } from "../../api/types";
import { TenantPageView, refundHref, type TenantPageViewProps } from "./TenantPageView";

const TENANT = "0190a1b2-0000-7000-8000-000000000001";
const DAY = 86_400_000;
const now = Date.parse("2026-03-20T12:00:00Z");

const entry = (
  id: string,
  type: LedgerEntry["type"],
  amount: number,
  daysAgo: number,
  refundable?: number,
): LedgerEntry => ({
  id,
  type,
  amount_minor: amount,
  currency: "usd",
  reference: "",
  reason: "",
  created_at: new Date(now - daysAgo * DAY).toISOString(),
  refundable_minor: refundable,
});

const props = (over: Partial<TenantPageViewProps> = {}): TenantPageViewProps => ({
  detail: {
    status: "success",
    data: {
      tenant: {
        id: TENANT,
        name: "Alice's lab",
        slug: "alice",
        members: 1,
        balance_minor: 5000,
        currency: "usd",
        live_allocations: 0,
        created_at: "2026-01-01T00:00:00Z",
      },
      balance: {
        balance_minor: 5000,
        currency: "usd",
        burn_rate_minor_per_hour: 0,
        runway_seconds: null,
        runway_hours: null,
        runway_text: "",
      },
      projects: [],
      members: [],
      live_allocations: [],
      policy_overrides: {},
    },
  },
  policies: { status: "success", data: [] },
  skus: [],
  ledger: {
    status: "success",
    data: {
      entries: [
        entry("refund-1", "refund", -700, 1),
        entry("debit-1", "usage_debit", -100, 2),
        entry("credit-new", "credit", 5000, 3, 4300),
        entry("credit-done", "credit", 800, 3, 0),
        entry("adjust-1", "adjustment", 500, 4),
        entry("credit-old", "credit", 2000, 45, 0),
      ],
      next_cursor: "c2",
    },
  },
  ledgerPager: { page: 1, hasPrev: false, hasNext: true, onPrev: vi.fn(), onNext: vi.fn() },
  drafts: {},
  onDraft: vi.fn(),
  onSave: vi.fn(),
  onReset: vi.fn(),
  error: null,
  ...over,
});

const show = (p: TenantPageViewProps) =>
  render(
    <MemoryRouter>
      <TenantPageView {...p} />
    </MemoryRouter>,
  );

describe("TenantPageView's ledger", () => {
  it("offers Refund on credits with money left to refund only, with the tenant and the credit", () => {
    show(props());
    const table = screen.getByRole("table", { name: "Ledger of the tenant" });
    const refunds = within(table).getAllByRole("link", { name: /^Refund/ });
    expect(refunds.map((a) => a.getAttribute("aria-label"))).toEqual([
      "Refund credit credit-new, $43.00 left",
    ]);
    expect(refunds[0]?.getAttribute("href")).toBe(
      `/admin/money?tenant_id=${TENANT}&credit_entry_id=credit-new`,
    );
    expect(within(table).getAllByText("Nothing left to refund")).toHaveLength(2);
    expect(within(table).getAllByRole("row")).toHaveLength(7); // header + 6 entries
    expect(screen.getByRole("navigation", { name: "Ledger of the tenant pages" })).toBeTruthy();
  });

  it("shows the ledger's loading, empty and restricted states", () => {
    const { rerender } = show(props({ ledger: { status: "pending" } }));
    expect(screen.getByRole("status").textContent).toBe("Loading the tenant's ledger…");
    rerender(
      <MemoryRouter>
        <TenantPageView {...props({ ledger: { status: "success", data: { entries: [] } } })} />
      </MemoryRouter>,
    );
    expect(screen.getByRole("heading", { name: "No ledger entries" })).toBeTruthy();
    rerender(
      <MemoryRouter>
        <TenantPageView
          {...props({ ledger: { status: "error", error: new ApiError({ status: 403, code: "forbidden" }) } })}
        />
      </MemoryRouter>,
    );
    expect(screen.getByRole("heading", { name: "Restricted" })).toBeTruthy();
  });

  it("is not shown for a tenant that did not load", () => {
    show(props({ detail: { status: "error", error: new ApiError({ status: 404, code: "not_found" }) } }));
    expect(screen.queryByRole("heading", { name: "Ledger" })).toBeNull();
  });

  it("encodes what it puts in the refund link", () => {
    expect(refundHref("a&b", "c d")).toBe("/admin/money?tenant_id=a%26b&credit_entry_id=c+d");
  });
});
