import { describe, expect, it } from "vitest";

import { billedSeconds, billingStopped, costSoFar } from "./format";

describe("billedSeconds", () => {
  const active = "2026-12-07T10:00:00Z";
  const now = Date.parse("2026-12-07T15:00:00Z");

  it("counts to now while the node runs", () => {
    expect(billedSeconds({ active_at: active }, now)).toBe(5 * 3600);
  });

  it("stops at the release request, not when the node finished releasing", () => {
    const a = {
      active_at: active,
      release_requested_at: "2026-12-07T12:13:00.900Z",
      released_at: "2026-12-07T13:00:00Z",
    };
    expect(billedSeconds(a, now)).toBe(7980); // whole seconds, as the ledger
    expect(costSoFar(1859, billedSeconds(a, now))).toBe(4120);
    expect(billingStopped(a)).toBe(true);
  });

  it("falls back to the release time, and is 0 before the node was active", () => {
    expect(billedSeconds({ active_at: active, released_at: "2026-12-07T13:00:00Z" }, now)).toBe(3 * 3600);
    expect(billedSeconds({}, now)).toBe(0);
    expect(billingStopped({})).toBe(false);
  });
});
