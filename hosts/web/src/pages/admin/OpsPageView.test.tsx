import { describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import type { OpsView, Runbook } from "../../api/types";
import { OpsPageView, type OpsPageViewProps } from "./OpsPageView";

const ops: OpsView = {
  at: "2026-03-20T12:00:00Z",
  nodes_by_state: [],
  nodes_by_health: [],
  allocations_by_state: [],
  entries: [
    { name: "events_failed", status: "degraded", value: 2, runbook: "failed-events" },
    { name: "rules_elsewhere", status: "degraded", value: 1, runbook: "external" },
    { name: "outbox_pending", status: "ok", value: 0 },
  ],
  failed_events: [],
  consumers: [],
};

const runbooks: Runbook[] = [
  {
    id: "failed-events",
    title: "Events that did not go out",
    url: "doc/runbook.md#events-that-did-not-go-out",
  },
  { id: "external", title: "The wiki page", url: "https://wiki.example.com/ops" },
];

const props = (over: Partial<OpsPageViewProps> = {}): OpsPageViewProps => ({
  ops: { status: "success", data: ops },
  runbooks,
  stuckAfter: 15,
  onStuckAfter: vi.fn(),
  onRetry: vi.fn(),
  retryError: null,
  ...over,
});

describe("OpsPageView's runbooks", () => {
  it("links a degraded check to its section of the runbooks screen", () => {
    render(
      <MemoryRouter>
        <OpsPageView {...props()} />
      </MemoryRouter>,
    );
    const here = screen.getByRole("link", { name: "Runbook: Events that did not go out" });
    expect(here.getAttribute("href")).toBe("/admin/runbooks#events-that-did-not-go-out");
    expect(here.getAttribute("target")).toBeNull();
    const out = screen.getByRole("link", { name: "Runbook: The wiki page" });
    expect(out.getAttribute("href")).toBe("https://wiki.example.com/ops");
    expect(out.getAttribute("rel")).toBe("noopener noreferrer");
  });

  it("names the runbook id while the list has not loaded", () => {
    render(
      <MemoryRouter>
        <OpsPageView {...props({ runbooks: [] })} />
      </MemoryRouter>,
    );
    expect(screen.queryByRole("link", { name: /^Runbook/ })).toBeNull();
    expect(screen.getByText("failed-events").tagName).toBe("CODE");
  });
});
