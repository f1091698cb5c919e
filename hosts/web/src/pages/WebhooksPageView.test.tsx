import { describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { ApiError } from "../api/errors";
import { WebhooksPageView, type WebhooksPageViewProps } from "./WebhooksPageView";

const props = (over: Partial<WebhooksPageViewProps> = {}): WebhooksPageViewProps => ({
  projectName: "default",
  endpoints: { status: "success", data: [] },
  draft: { url: "ftp://hooks.example.com/x", description: "bot", event_types: ["billing.balance_depleted"] },
  onDraft: vi.fn(),
  onCreate: vi.fn(),
  creating: false,
  createError: null,
  createCooldown: 0,
  onCloseCreated: vi.fn(),
  ...over,
});

const show = (p: WebhooksPageViewProps) =>
  render(
    <MemoryRouter>
      <WebhooksPageView {...p} />
    </MemoryRouter>,
  );

describe("WebhooksPageView", () => {
  it("puts a refused URL under the URL field, with the API's reason, and keeps what was typed", () => {
    show(
      props({
        createError: new ApiError({
          status: 400,
          code: "webhook_url_refused",
          field: "url",
          message: "the URL must use https",
        }),
      }),
    );
    const url = screen.getByLabelText("Endpoint URL") as HTMLInputElement;
    expect(url.value).toBe("ftp://hooks.example.com/x");
    expect(url.getAttribute("aria-invalid")).toBe("true");
    const err = document.getElementById(url.getAttribute("aria-describedby")!.split(" ").pop()!);
    expect(err?.textContent).toBe("the URL must use https");
    // Said once, at its field: not again under the form.
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    expect((screen.getByRole("checkbox", { name: /Balance used up/ }) as HTMLInputElement).checked).toBe(
      true,
    );
  });

  it("puts a missing event type under the event types and a limit under the form", () => {
    const { unmount } = show(
      props({
        createError: new ApiError({
          status: 400,
          code: "validation_failed",
          field: "event_types",
          message: "choose at least one event type",
        }),
      }),
    );
    const group = screen.getByRole("group", { name: "Event types" });
    expect(within(group).getByRole("alert").textContent).toBe("choose at least one event type");
    unmount();
    show(props({ createError: new ApiError({ status: 409, code: "webhook_endpoint_limit" }) }));
    const form = screen.getByRole("form", { name: "Register an endpoint" });
    expect(within(form).getByRole("alert").textContent).toContain(
      "The project has as many webhook endpoints as it may have.",
    );
  });

  it("lists an endpoint with its events and why it is disabled; a 403 is the restricted state without the form", () => {
    const { unmount } = show(
      props({
        endpoints: {
          status: "success",
          data: [
            {
              id: "e1",
              project_id: "p1",
              url: "https://hooks.example.com/gpuaas",
              description: "ops bot",
              event_types: ["payments.balance_credited"],
              status: "disabled",
              disabled_reason: "failing",
              created_at: "2026-12-07T10:00:00Z",
              updated_at: "2026-12-07T10:00:00Z",
            },
          ],
        },
      }),
    );
    const table = screen.getByRole("table", { name: "Webhook endpoints of default" });
    expect(
      within(table).getByRole("link", { name: "Endpoint https://hooks.example.com/gpuaas" }),
    ).toBeTruthy();
    expect(table.textContent).toContain("payments.balance_credited");
    expect(table.textContent).toContain("automatically: every delivery failed for 24 hours");
    unmount();
    show(props({ endpoints: { status: "error", error: new ApiError({ status: 403, code: "forbidden" }) } }));
    expect(screen.getByRole("heading", { name: "Restricted" })).toBeTruthy();
    expect(screen.queryByRole("form", { name: "Register an endpoint" })).toBeNull();
  });
});
