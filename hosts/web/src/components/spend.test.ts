import { describe, expect, it } from "vitest";
import type { LedgerEntry } from "../api/types";
import { spendBuckets, timeRange } from "./spend";

const debit = (at: string, minor: number) =>
  ({ type: "usage_debit", created_at: at, amount_minor: -minor }) as LedgerEntry;

describe("spend chart", () => {
  it("draws one debit as a minute with a minute either side, not years", () => {
    const { buckets, unit } = spendBuckets([debit("2026-12-07T18:32:05Z", 1)]);
    expect(unit).toBe("minute");
    const start = Date.parse("2026-12-07T18:32:00Z") / 1000;
    expect(buckets).toEqual([{ start, minor: 1 }]);
    expect(timeRange(buckets, 60)).toEqual([start - 60, start + 60]);
  });

  it("sums debits per bucket and leaves the empty buckets between at zero", () => {
    const { buckets, unit } = spendBuckets([
      debit("2026-12-07T10:00:10Z", 5),
      debit("2026-12-07T10:00:50Z", 7),
      debit("2026-12-07T10:02:00Z", 3),
      { type: "credit", created_at: "2026-12-07T10:01:00Z", amount_minor: 2500 } as LedgerEntry,
    ]);
    expect(unit).toBe("minute");
    expect(buckets.map((b) => b.minor)).toEqual([12, 0, 3]);
    expect(timeRange(buckets, 60)[1] - timeRange(buckets, 60)[0]).toBe(4 * 60);
  });
});
