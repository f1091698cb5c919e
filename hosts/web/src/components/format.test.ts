import { describe, expect, it } from "vitest";

import { billedSeconds, billingStopped, costSoFar, shortId, toMinor } from "./format";

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

describe("shortId", () => {
  it("is the id's last 8 characters, the CLI's name, so ids made in the same minute differ", () => {
    // Two UUIDv7 ids made moments apart share their first 8 characters.
    expect(shortId("01a251bd-95f9-763f-9883-b95ec4666f91")).toBe("c4666f91");
    expect(shortId("01a251bd-a0c2-7a11-8e2d-0d7f3b21aa07")).toBe("3b21aa07");
    expect(shortId("short")).toBe("short");
  });
});

describe("toMinor", () => {
  it("reads amounts as people type them, and nothing else", () => {
    expect(toMinor("25")).toBe(2500);
    expect(toMinor(" 25.5 ")).toBe(2550);
    expect(toMinor("12.05")).toBe(1205);
    for (const bad of ["", "12,50", "1.234", "-5", "abc", "1e3"]) expect(toMinor(bad)).toBeNaN();
  });
});
