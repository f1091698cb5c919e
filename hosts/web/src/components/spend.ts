// The spend chart's numbers, apart from uPlot (which needs a browser to load).
import type { LedgerEntry } from "../api/types";

export interface Bucket {
  start: number; // unix seconds
  minor: number;
}

export function spendBuckets(entries: LedgerEntry[]): { buckets: Bucket[]; unit: "minute" | "hour" | "day" } {
  const debits = entries.filter((e) => e.type === "usage_debit");
  if (debits.length === 0) return { buckets: [], unit: "hour" };
  const times = debits.map((e) => Date.parse(e.created_at) / 1000);
  const span = Math.max(...times) - Math.min(...times);
  const unit = span < 2 * 3600 ? "minute" : span < 3 * 86400 ? "hour" : "day";
  const size = unit === "minute" ? 60 : unit === "hour" ? 3600 : 86400;
  const sums = new Map<number, number>();
  debits.forEach((e, i) => {
    const b = Math.floor((times[i] ?? 0) / size) * size;
    sums.set(b, (sums.get(b) ?? 0) + Math.abs(e.amount_minor));
  });
  const first = Math.min(...sums.keys());
  const last = Math.max(...sums.keys());
  const buckets: Bucket[] = [];
  for (let t = first; t <= last && buckets.length < 500; t += size)
    buckets.push({ start: t, minor: sums.get(t) ?? 0 });
  return { buckets, unit };
}

/** The chart's time axis: the buckets' span and one bucket (size seconds) either side. */
export function timeRange(buckets: Bucket[], size: number): [number, number] {
  return [(buckets[0]?.start ?? 0) - size, (buckets[buckets.length - 1]?.start ?? 0) + size];
}
