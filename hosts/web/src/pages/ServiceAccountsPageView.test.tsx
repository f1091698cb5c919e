import { describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { ApiError } from "../api/errors";
import type { ServiceAccount } from "../api/types";
import { ServiceAccountsPageView, type ServiceAccountsPageViewProps } from "./ServiceAccountsPageView";

const now = Date.parse("2026-12-07T12:00:00Z");

const account: ServiceAccount = {
  id: "01a251bd-95f9-763f-9883-b95ec4666f91",
  client_id: "01a251bd-95f9-763f-9883-b95ec4666f91",
  name: "ci runner",
  project_id: "p1",
  role: "member",
  scopes: ["storage", "read", "allocations"],
  created_at: "2026-12-07T10:00:00Z",
  credentials: [
    { id: "c-active-0000001", hint: "gps_AbCd…", created_at: "2026-12-07T10:01:00Z" },
    {
      id: "c-revoked-000002",
      hint: "gps_EfGh…",
      created_at: "2026-12-07T10:00:30Z",
      revoked_at: "2026-12-07T11:00:00Z",
    },
  ],
};

const props = (over: Partial<ServiceAccountsPageViewProps> = {}): ServiceAccountsPageViewProps => ({
  projectId: "p1",
  projectName: "default",
  accounts: { status: "success", data: [] },
  origin: "https://gpuaas.example.com",
  now,
  draft: { name: "nightly", role: "viewer" },
  onDraft: vi.fn(),
  onCreate: vi.fn(),
  creating: false,
  createError: null,
  createCooldown: 0,
  secretExpiry: { choice: "never", date: "" },
  onSecretExpiry: vi.fn(),
  onSecretDialog: vi.fn(),
  onAddSecret: vi.fn(() => Promise.reject(new Error("refused"))),
  addingSecret: false,
  onCloseCreated: vi.fn(),
  onRevokeSecret: vi.fn(),
  revokingSecret: false,
  onDisable: vi.fn(),
  disabling: false,
  ...over,
});

const show = (p: ServiceAccountsPageViewProps) =>
  render(
    <MemoryRouter>
      <ServiceAccountsPageView {...p} />
    </MemoryRouter>,
  );

describe("ServiceAccountsPageView", () => {
  it("puts a refused name under the name field and a taken one under the form, keeping what was typed", () => {
    const { unmount } = show(
      props({
        createError: new ApiError({
          status: 400,
          code: "validation_failed",
          field: "name",
          message: "name must not be empty",
        }),
      }),
    );
    const name = screen.getByLabelText("Name") as HTMLInputElement;
    expect(name.value).toBe("nightly");
    const err = document.getElementById(name.getAttribute("aria-describedby")!.split(" ").pop()!);
    expect(err?.textContent).toBe("name must not be empty");
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    expect((screen.getByLabelText("Role in the project") as HTMLSelectElement).value).toBe("viewer");
    unmount();
    show(props({ createError: new ApiError({ status: 409, code: "service_account_name_taken" }) }));
    const form = screen.getByRole("form", { name: "Create a service account" });
    expect(within(form).getByRole("alert").textContent).toContain(
      "A service account with this name already exists.",
    );
  });

  it("shows an account's client id, role and scopes, and its secrets: the active one revocable, the revoked one said so", () => {
    show(props({ accounts: { status: "success", data: [account] } }));
    const card = screen.getByRole("article", { name: "ci runner" });
    expect(card.textContent).toContain(account.client_id);
    expect(card.textContent).toContain("Member (read, allocations, storage)");
    const table = within(card).getByRole("table", { name: "Client secrets of ci runner" });
    const [, active, revoked] = within(table).getAllByRole("row");
    expect(active!.textContent).toContain("gps_AbCd…");
    expect(within(active!).getByRole("button", { name: "Revoke gps_AbCd… of ci runner" })).toBeTruthy();
    expect(revoked!.textContent).toMatch(/revoked /);
    expect(within(revoked!).queryByRole("button")).toBeNull();
    expect(within(card).getByRole("button", { name: "Disable ci runner" })).toBeTruthy();
  });

  it("shows the limit of two active secrets in the add dialog, not under another account", async () => {
    const limit = new ApiError({
      status: 409,
      code: "credential_limit_reached",
      message: "the service account already holds two active credentials; revoke one first",
    });
    show(
      props({
        accounts: { status: "success", data: [account, { ...account, id: "other", name: "other" }] },
        addSecretError: { id: account.id, error: limit },
      }),
    );
    await userEvent.click(screen.getByRole("button", { name: "Add a client secret to other" }));
    expect(within(screen.getByRole("dialog")).queryByRole("alert")).toBeNull();
    await userEvent.keyboard("{Escape}");
    await userEvent.click(screen.getByRole("button", { name: "Add a client secret to ci runner" }));
    const dialog = screen.getByRole("dialog", { name: "Add a client secret to ci runner" });
    expect(within(dialog).getByRole("alert").textContent).toContain(
      "The limit of credentials is reached. Revoke one first.",
    );
    expect(within(dialog).getByRole("alert").textContent).toContain("two active credentials");
  });

  it("shows a new secret once with the client id and how to exchange it for a token", () => {
    show(
      props({
        accounts: { status: "success", data: [account] },
        created: {
          account,
          credential: {
            credential: { id: "c3", hint: "gps_Zzzz…", created_at: "2026-12-07T12:00:00Z" },
            client_id: account.client_id,
            client_secret: "gps_Zzzzsecret",
          },
        },
      }),
    );
    const dialog = screen.getByRole("dialog", { name: "Client secret added: copy it now" });
    expect(dialog.textContent).toContain("you will not see it again");
    expect(within(dialog).getByTestId("client-secret").textContent).toBe("gps_Zzzzsecret");
    expect(within(dialog).getByTestId("client-id").textContent).toBe(account.client_id);
    expect(within(dialog).getByRole("button", { name: "Copy secret" })).toBeTruthy();
    expect(within(dialog).getByRole("button", { name: "Copy client id" })).toBeTruthy();
    const usage = within(dialog).getByTestId("service-token-usage").textContent;
    expect(usage).toContain("https://gpuaas.example.com/api/v1/auth/service-token");
    expect(usage).toContain(`\\"client_id\\": \\"${account.client_id}\\"`);
    expect(usage).toContain("X-Project-ID: p1");
    expect(usage).not.toContain("gps_Zzzzsecret");
  });

  it("says so when there is no account, and shows a 403 as Restricted without the form", () => {
    const { unmount } = show(props());
    expect(screen.getByRole("heading", { name: "No service accounts yet" })).toBeTruthy();
    unmount();
    show(props({ accounts: { status: "error", error: new ApiError({ status: 403, code: "forbidden" }) } }));
    expect(screen.getByRole("heading", { name: "Restricted" })).toBeTruthy();
    expect(screen.getByRole("alert").textContent).toContain("this project's service accounts");
    expect(screen.queryByRole("form", { name: "Create a service account" })).toBeNull();
  });
});
