import { describe, expect, it } from "vitest";
import type { WebhookEndpoint } from "../api/types";
import {
  attemptOutcome,
  attemptTime,
  createBody,
  deliveryNote,
  endpointChanges,
  draftOf,
  inOrder,
  previousSecretUntil,
  statusDetail,
} from "./webhooks";

const endpoint: WebhookEndpoint = {
  id: "01a251bd-95f9-763f-9883-b95ec4666f91",
  project_id: "p1",
  url: "https://hooks.example.com/gpuaas",
  description: "ops bot",
  event_types: ["payments.balance_credited", "provisioning.allocation_active"],
  status: "enabled",
  created_at: "2026-12-07T10:00:00Z",
  updated_at: "2026-12-07T10:00:00Z",
};

describe("inOrder", () => {
  it("lists event types in the form's order, each once", () => {
    expect(
      inOrder(["payments.balance_credited", "provisioning.allocation_active", "payments.balance_credited"]),
    ).toEqual(["provisioning.allocation_active", "payments.balance_credited"]);
  });
});

describe("createBody", () => {
  it("trims the URL and description and leaves an empty description out", () => {
    expect(
      createBody({
        url: "  https://h.example/x ",
        description: "  ",
        event_types: ["billing.low_balance_warning"],
      }),
    ).toEqual({ url: "https://h.example/x", event_types: ["billing.low_balance_warning"] });
    expect(createBody({ url: "https://h.example/x", description: " bot ", event_types: [] })).toEqual({
      url: "https://h.example/x",
      description: "bot",
      event_types: [],
    });
  });
});

describe("endpointChanges", () => {
  it("is undefined when nothing changed, event types compared as a set", () => {
    const d = draftOf(endpoint);
    expect(endpointChanges(endpoint, d)).toBeUndefined();
    expect(endpointChanges(endpoint, { ...d, event_types: [...d.event_types].reverse() })).toBeUndefined();
    expect(endpointChanges(endpoint, { ...d, url: ` ${d.url} ` })).toBeUndefined();
  });

  it("sends only what changed", () => {
    const d = draftOf(endpoint);
    expect(endpointChanges(endpoint, { ...d, url: "https://other.example/h" })).toEqual({
      url: "https://other.example/h",
    });
    expect(endpointChanges(endpoint, { ...d, description: "" })).toEqual({ description: "" });
    expect(
      endpointChanges(endpoint, { ...d, event_types: ["provisioning.allocation_failed", ...d.event_types] }),
    ).toEqual({
      event_types: [
        "provisioning.allocation_active",
        "provisioning.allocation_failed",
        "payments.balance_credited",
      ],
    });
  });

  it("sends an emptied event type list, for the API to refuse with its own message", () => {
    expect(endpointChanges(endpoint, { ...draftOf(endpoint), event_types: [] })).toEqual({ event_types: [] });
  });
});

describe("statusDetail", () => {
  it("says nothing for a healthy endpoint and warns about one that is failing", () => {
    expect(statusDetail(endpoint)).toBeUndefined();
    expect(statusDetail({ ...endpoint, failing_since: "2026-12-07T10:00:00Z" })).toMatch(
      /^failing since .+: disabled after 24 hours without a success$/,
    );
  });

  it("says who or what disabled it", () => {
    const off = { ...endpoint, status: "disabled" as const };
    expect(statusDetail({ ...off, disabled_reason: "manual" })).toBe("by a project admin");
    expect(statusDetail(off)).toBe("by a project admin");
    expect(
      statusDetail({ ...off, disabled_reason: "failing", failing_since: "2026-12-06T10:00:00Z" }),
    ).toMatch(/^automatically: every delivery failed for 24 hours \(since .+\)$/);
    expect(statusDetail({ ...off, disabled_reason: "failing" })).toBe(
      "automatically: every delivery failed for 24 hours",
    );
    expect(statusDetail({ ...off, disabled_reason: "something new" })).toBe("something new");
  });
});

describe("attemptOutcome", () => {
  it("gives the response code, and the error only when it says more", () => {
    expect(attemptOutcome({ status_code: 204, error: "" })).toBe("204");
    expect(attemptOutcome({ status_code: 503, error: "the endpoint answered 503" })).toBe("503");
    expect(attemptOutcome({ status_code: 500, error: "body too large" })).toBe("500: body too large");
  });

  it("says when no response came, and why", () => {
    expect(attemptOutcome({ status_code: 0, error: "dial tcp 127.0.0.1:9: connection refused" })).toBe(
      "no response: dial tcp 127.0.0.1:9: connection refused",
    );
    expect(attemptOutcome({ status_code: 0, error: "" })).toBe("no response");
  });
});

describe("deliveryNote", () => {
  const attempt = { attempt: 1, at: "2026-12-07T10:00:00Z", status_code: 503, duration_ms: 12 };
  it("says when a pending delivery is tried next", () => {
    expect(deliveryNote({ status: "pending", next_attempt_at: "2026-12-07T10:00:05Z", log: [] })).toMatch(
      /^next attempt /,
    );
  });

  it("gives a failed delivery's reason only when its last attempt does not", () => {
    expect(
      deliveryNote({
        status: "failed",
        next_attempt_at: "2026-12-07T10:00:05Z",
        last_error: "endpoint disabled",
        log: [{ ...attempt, error: "the endpoint answered 503" }],
      }),
    ).toBe("endpoint disabled");
    expect(
      deliveryNote({
        status: "failed",
        next_attempt_at: "2026-12-07T10:00:05Z",
        last_error: "the endpoint answered 503",
        log: [{ ...attempt, error: "the endpoint answered 503" }],
      }),
    ).toBeUndefined();
    expect(
      deliveryNote({ status: "succeeded", next_attempt_at: "2026-12-07T10:00:05Z", log: [] }),
    ).toBeUndefined();
  });
});

describe("attemptTime", () => {
  it("is the time of day on the delivery's day, with the date after it", () => {
    const created = new Date(2026, 11, 7, 23, 59, 50).toISOString();
    const sameDay = attemptTime(new Date(2026, 11, 7, 23, 59, 55).toISOString(), created);
    expect(sameDay).not.toMatch(/2026/);
    expect(sameDay).toMatch(/59/);
    expect(attemptTime(new Date(2026, 11, 8, 0, 0, 20).toISOString(), created)).toMatch(/2026/);
  });
});

describe("previousSecretUntil", () => {
  it("is 24 hours after the rotation", () => {
    expect(previousSecretUntil(Date.parse("2026-12-07T10:00:00Z"))).toBe("2026-12-08T10:00:00.000Z");
  });
});
