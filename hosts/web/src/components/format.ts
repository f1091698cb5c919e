import type { Allocation } from "../api/types";

export function money(minor: number, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(
      minor / 100,
    );
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency.toUpperCase()}`;
  }
}

/** Parses an amount as people type it ("25", "25.5", "12.50") into minor units; NaN when it is not one. */
export function toMinor(v: string): number {
  if (!/^\d+([.]\d{1,2})?$/.test(v.trim())) return NaN;
  const [whole = "0", frac = ""] = v.trim().split(".");
  return Number(whole) * 100 + Number((frac + "00").slice(0, 2));
}

export function dateTime(iso: string | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${r} s`;
  return `${r} s`;
}

/** Cost of `seconds` at an hourly price, rounded down like the ledger. */
export function costSoFar(hourlyMinor: number, seconds: number): number {
  return Math.floor((hourlyMinor * Math.max(0, seconds)) / 3600);
}

/**
 * Whole seconds an allocation is billed for (doc/billing.md): from active_at to its
 * release request — billing stops there, however long the node takes to clean up —
 * else to its release (rows from before requests were stamped), else to now; 0 before
 * it was active.
 */
export function billedSeconds(
  a: { active_at?: string; release_requested_at?: string; released_at?: string },
  now: number,
): number {
  if (!a.active_at) return 0;
  const stop = a.release_requested_at ?? a.released_at;
  const end = stop ? Date.parse(stop) : now;
  return Math.max(0, Math.floor((end - Date.parse(a.active_at)) / 1000));
}

/** Why an allocation's release was asked for, as the console says it. */
export const RELEASE_REASON_TEXT: Record<NonNullable<Allocation["release_reason"]>, string> = {
  user: "asked for by its user",
  tenant_admin: "asked for by an admin of the organisation",
  operator: "asked for by a platform operator",
  balance_depleted: "the balance ran out",
  cost_cap_reached: "its total-cost cap was reached",
};

/** Whether an allocation's billing has stopped (its release was asked for). */
export function billingStopped(a: { release_requested_at?: string; released_at?: string }): boolean {
  return Boolean(a.release_requested_at ?? a.released_at);
}

/**
 * An id's short name: its last 8 characters — the name the CLI takes and
 * prints (`gpuaas alloc get c4666f91`, `ssh gpuaas.c4666f91`) and emails use.
 * Not the first 8: ids are UUIDv7, whose leading characters are a timestamp
 * that everything made in the same minute shares.
 */
export function shortId(id: string): string {
  return id.slice(-8);
}
