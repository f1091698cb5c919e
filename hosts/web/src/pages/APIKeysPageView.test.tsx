import { describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { ApiError } from "../api/errors";
import type { APIKey } from "../api/types";
import { APIKeysPageView, type APIKeysPageViewProps } from "./APIKeysPageView";

const projects = [
  { id: "p1", name: "default", is_default: true, role: "admin" as const, resource_id: "r1" },
  { id: "p2", name: "research", is_default: false, role: "member" as const, resource_id: "r2" },
];

const key: APIKey = {
  id: "01a251bd-95f9-763f-9883-b95ec4666f91",
  name: "ci runner",
  project_id: "p2",
  prefix: "gpa_AbCdEfGhIjKl",
  scopes: ["storage", "read"],
  spend_cap_minor: 5000,
  created_at: "2026-12-07T10:00:00Z",
};

const props = (over: Partial<APIKeysPageViewProps> = {}): APIKeysPageViewProps => ({
  keys: { status: "success", data: [] },
  projects,
  currency: "usd",
  origin: "https://gpuaas.example.com",
  now: Date.parse("2026-12-07T12:00:00Z"),
  draft: {
    name: "laptop",
    projectId: "p2",
    scopes: ["read", "allocations"],
    expiry: { choice: "never", date: "" },
    spendCap: "25",
  },
  onDraft: vi.fn(),
  onCreate: vi.fn(),
  creating: false,
  createError: null,
  createCooldown: 0,
  onCloseCreated: vi.fn(),
  onRevoke: vi.fn(),
  revoking: false,
  ...over,
});

const show = (p: APIKeysPageViewProps) =>
  render(
    <MemoryRouter>
      <APIKeysPageView {...p} />
    </MemoryRouter>,
  );

/** The error a field's input points at. */
const errorOf = (input: HTMLElement) =>
  document.getElementById(input.getAttribute("aria-describedby")!.split(" ").pop()!)?.textContent;

describe("APIKeysPageView", () => {
  it("puts a missing name under the name field with the API's words, and keeps everything typed", () => {
    show(
      props({
        draft: { ...props().draft, name: "" },
        createError: new ApiError({
          status: 400,
          code: "validation_failed",
          field: "name",
          message: "name must not be empty",
        }),
      }),
    );
    const name = screen.getByLabelText("Name") as HTMLInputElement;
    expect(name.value).toBe("");
    expect(name.getAttribute("aria-invalid")).toBe("true");
    expect(errorOf(name)).toBe("name must not be empty");
    // Said once, at its field.
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    expect((screen.getByLabelText("Project") as HTMLSelectElement).value).toBe("p2");
    expect((screen.getByRole("checkbox", { name: /^Allocations/ }) as HTMLInputElement).checked).toBe(true);
    expect((screen.getByLabelText("Daily spend cap (USD, optional)") as HTMLInputElement).value).toBe("25");
  });

  it("puts no scope under the scopes, a bad cap under the cap and anything else under the form", () => {
    const { unmount } = show(
      props({
        createError: new ApiError({
          status: 400,
          code: "validation_failed",
          field: "scopes",
          message: "scopes must not be empty",
        }),
      }),
    );
    const group = screen.getByRole("group", { name: "Scopes" });
    expect(within(group).getByRole("alert").textContent).toBe("scopes must not be empty");
    unmount();
    const again = show(
      props({
        createError: new ApiError({
          status: 400,
          code: "validation_failed",
          field: "spend_cap_minor",
          message: "spend_cap_minor must be at most 1000000000",
        }),
      }),
    );
    expect(errorOf(screen.getByLabelText("Daily spend cap (USD, optional)"))).toBe(
      "spend_cap_minor must be at most 1000000000",
    );
    again.unmount();
    show(props({ createError: new ApiError({ status: 403, code: "interactive_required" }) }));
    const form = screen.getByRole("form", { name: "Create an API key" });
    expect(within(form).getByRole("alert").textContent).toContain("Sign in as a person to do this");
  });

  it("puts a chosen day's error under the day field", () => {
    show(
      props({
        draft: { ...props().draft, expiry: { choice: "date", date: "" } },
        createError: new ApiError({
          status: 400,
          code: "validation_failed",
          field: "expires_at",
          message: "Choose the day it expires.",
        }),
      }),
    );
    expect(errorOf(screen.getByLabelText("Expiry day"))).toBe("Choose the day it expires.");
    expect(screen.getByLabelText("Expires").getAttribute("aria-invalid")).toBeNull();
  });

  it("lists a key with its project's name, scopes, cap and use, and asks before revoking it", () => {
    show(props({ keys: { status: "success", data: [key] } }));
    const table = screen.getByRole("table", { name: "Your API keys" });
    const row = within(table).getAllByRole("row")[1]!;
    expect(row.textContent).toContain("gpa_AbCdEfGhIjKl…");
    expect(row.textContent).toContain("research");
    expect(row.textContent).toContain("readstorage");
    expect(row.textContent).toMatch(/\$50\.00 a day/);
    expect(row.textContent).toContain("never"); // no expiry, never used
    expect(within(row).getByRole("button", { name: "Revoke ci runner" })).toBeTruthy();
  });

  it("says so when there is no key, and shows a 403 as Restricted without the form", () => {
    const { unmount } = show(props());
    expect(screen.getByRole("heading", { name: "No API keys yet" })).toBeTruthy();
    unmount();
    show(props({ keys: { status: "error", error: new ApiError({ status: 403, code: "forbidden" }) } }));
    expect(screen.getByRole("heading", { name: "Restricted" })).toBeTruthy();
    expect(screen.queryByRole("form", { name: "Create an API key" })).toBeNull();
  });

  it("shows a new key once, with Copy and how to use it in its project", () => {
    show(
      props({
        keys: { status: "success", data: [key] },
        created: { api_key: key, secret: "gpa_AbCdEfGhIjKlsecretsecretsecretsecretsecretsecre123456" },
      }),
    );
    const dialog = screen.getByRole("dialog", { name: "API key created: copy it now" });
    expect(dialog.textContent).toContain("you will not see it again");
    expect(within(dialog).getByTestId("api-key-secret").textContent).toBe(
      "gpa_AbCdEfGhIjKlsecretsecretsecretsecretsecretsecre123456",
    );
    expect(within(dialog).getByRole("button", { name: "Copy key" })).toBeTruthy();
    const usage = within(dialog).getByTestId("api-key-usage").textContent;
    expect(usage).toContain("gpuaas login --api https://gpuaas.example.com --api-key-stdin");
    expect(usage).toContain("Authorization: Bearer $GPUAAS_API_KEY");
    expect(usage).toContain("X-Project-ID: p2");
  });
});
