// The console as people use it, against a fresh `gpuaas dev`: the user's
// journey, the operator's, one journey by keyboard only, and every screen's
// error / restricted / rate-limited / empty states by intercepting responses.
import { expect, test, type Page } from "@playwright/test";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { nav, newPublicKey, screen, signIn } from "./helpers";

test.describe.configure({ mode: "serial" });

let tenantId = "";
let secondAllocation = "";
let creditEntryId = "";

const err = (
  status: number,
  code: string,
  headers: Record<string, string> = {},
  details?: Record<string, unknown>,
) => ({
  status,
  headers: { "Content-Type": "application/json", "X-Correlation-ID": "e2e-corr", ...headers },
  body: JSON.stringify({ error: { code, message: code, correlation_id: "e2e-corr", details } }),
});

async function setPolicy(page: Page, key: string, value: string) {
  const input = page.getByLabel(`Value of ${key}`);
  await input.fill(value);
  await page.getByRole("button", { name: `Save ${key}` }).click();
  await expect(page.getByRole("button", { name: `Save ${key}` })).toBeDisabled();
}

test("operator setup: billing windows of 5 s and room for many page loads", async ({ page }) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Policies" }).click();
  await expect(page.getByRole("heading", { name: "Policies" })).toBeVisible();
  await setPolicy(page, "billing.window_seconds", "5");
  await setPolicy(page, "ratelimit.auth_per_minute", "1000");
  await screen(page, "admin-policies");
});

test("a new user: sign in, top up, request, watch it go active, terminal, release, usage", async ({
  page,
}) => {
  await signIn(page, "alice");
  await expect(page.getByRole("heading", { name: "Capacity" })).toBeVisible();
  await screen(page, "capacity");

  await nav(page, "Settings");
  tenantId = (await page.locator("dt:text('Tenant id') + dd").textContent()) ?? "";
  expect(tenantId).not.toBe("");
  await screen(page, "settings");

  // An SSH key, needed to request a node.
  await nav(page, "SSH keys");
  await expect(page.getByRole("heading", { name: "No SSH keys yet" })).toBeVisible();
  await page.getByLabel("Name", { exact: true }).fill("laptop");
  await page.getByLabel("Public key").fill("not a key");
  await page.getByRole("button", { name: "Add key" }).click();
  await expect(page.locator(".field .error")).toBeVisible(); // next to the field, in words
  await page.getByLabel("Public key").fill(newPublicKey("alice@laptop"));
  await page.getByRole("button", { name: "Add key" }).click();
  await expect(page.getByRole("cell", { name: "laptop", exact: true })).toBeVisible();
  await screen(page, "ssh-keys");

  // Top up through the dev checkout and come back to a real /billing page.
  await nav(page, "Billing");
  await expect(page.getByTestId("balance")).toBeVisible();
  await page.getByRole("button", { name: "$25.00" }).click();
  await page.getByRole("button", { name: "Continue to payment" }).click();
  await page.waitForURL(/\/dev-pay\//);
  await page.locator("#pay").click();
  await page.waitForURL(/\/billing\?checkout=success/);
  await expect(page.getByTestId("checkout-outcome")).toContainText("Payment received", { timeout: 60_000 });
  await expect(page.getByTestId("balance")).toContainText("25.00");
  await screen(page, "billing-after-topup");
  // The credit's ledger entry id (an operator's refund names it).
  creditEntryId =
    (await page
      .getByRole("table", { name: "Ledger entries" })
      .getByRole("row")
      .filter({ hasText: "credit" })
      .first()
      .locator("[data-entry-id]")
      .getAttribute("data-entry-id")) ?? "";
  expect(creditEntryId).not.toBe("");

  // Request a node: the price is shown before confirming.
  await nav(page, "Capacity");
  await page.getByRole("link", { name: "Request a node" }).click();
  await expect(page.getByRole("heading", { name: "Price" })).toBeVisible();
  await screen(page, "request");
  await page.getByRole("button", { name: /^Request .* per hour$/ }).click();
  await page.waitForURL(/\/allocations\/(?!new$)[^/]+$/);
  // Live state without reloading.
  await expect(page.getByTestId("allocation-state")).toContainText("Active", { timeout: 120_000 });
  await expect(page.getByTestId("ssh-command")).toContainText("ssh");
  // The allocation's short name is the CLI's (the id's last 8 characters), and the downloaded
  // ~/.ssh/config entry uses the alias `gpuaas config-ssh` writes, its host key pinned.
  const allocationId = page.url().split("/").pop()!;
  const name = allocationId.slice(-8);
  await expect(page.getByTestId("allocation-name")).toHaveText(name);
  const entry = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download SSH config entry" }).click();
  const entryFile = await entry;
  expect(entryFile.suggestedFilename()).toBe(`gpuaas.${name}.sshconfig`);
  const entryText = readFileSync(await entryFile.path(), "utf8");
  expect(entryText).toContain(`Host gpuaas.${name}\n`);
  expect(entryText).toContain(`  HostKeyAlias gpuaas.${name}\n`);
  expect(entryText).toMatch(new RegExp(`^# gpuaas\\.${name} ssh-ed25519 \\S+$`, "m"));
  // The live notification stream brings "Your node is ready" to the inbox.
  await expect(page.getByRole("link", { name: /^Inbox, \d+ unread$/ })).toBeVisible({ timeout: 30_000 });

  // The browser terminal: run a command and read its output.
  await expect(page.getByTestId("terminal-status")).toContainText("Connected", { timeout: 30_000 });
  await page.getByTestId("terminal").click();
  await page.keyboard.type("echo console-$((6*7))\n");
  await expect(page.locator(".xterm-rows")).toContainText("console-42", { timeout: 30_000 });
  await screen(page, "allocation-active");
  // xterm (its root and every row and column) stays inside the frame at both widths.
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 800 });
    await expect
      .poll(
        () =>
          page.evaluate(() => {
            const frame = document.querySelector(".term-frame")!.getBoundingClientRect();
            return Math.max(
              ...[".xterm", ".xterm-screen"].map((sel) => {
                const r = document.querySelector(sel)!.getBoundingClientRect();
                return Math.max(r.right - frame.right, r.bottom - frame.bottom);
              }),
            );
          }),
        { message: `the terminal fits its frame at ${width}px` },
      )
      .toBeLessThanOrEqual(0);
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // Cost so far ticks while it runs (so the billing worker has something to debit).
  await expect(page.getByTestId("cost-so-far")).not.toHaveText("$0.00", { timeout: 30_000 });

  // Release with confirm.
  await page.getByRole("button", { name: "Release", exact: true }).click();
  await expect(page.getByRole("dialog")).toBeVisible();
  await page.getByRole("button", { name: "Release node" }).click();
  await expect(page.getByTestId("allocation-state")).toContainText(/Releasing|Released/, { timeout: 30_000 });
  await expect(page.getByTestId("allocation-state")).toContainText("Released", { timeout: 120_000 });
  // Billing stopped at the request: the page says what it was billed and why it was released.
  await expect(page.getByTestId("release-reason")).toHaveText("asked for by its user");
  await expect(page.getByText("Billed", { exact: true })).toBeVisible();

  await nav(page, "Allocations");
  await expect(page.getByRole("table", { name: "Allocations of this project" })).toBeVisible();
  await screen(page, "allocations");

  // The inbox: what happened, read and marked read.
  await page.getByRole("link", { name: /^Inbox/ }).click();
  await expect(page.getByRole("heading", { name: "Inbox", level: 1 })).toBeVisible();
  await expect(page.getByRole("heading", { name: /Your node is ready/ })).toBeVisible();
  // The release notice says how long the node was billed and what it cost.
  await expect(page.getByText(/was released after .+ of use, billed /)).toBeVisible({ timeout: 30_000 });
  await screen(page, "inbox");
  await page.getByRole("button", { name: "Mark all read" }).click();
  await expect(page.getByTestId("unread-count")).toHaveText("0 unread");
  await expect(page.getByRole("link", { name: "Inbox", exact: true })).toBeVisible();

  // Usage, the spend chart and the debits.
  await nav(page, "Billing");
  await expect(page.getByRole("table", { name: "Usage records" })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId("spend-chart")).toBeVisible({ timeout: 90_000 });
  await expect(
    page.getByRole("table", { name: "Ledger entries" }).getByText("usage debit").first(),
  ).toBeVisible();
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download usage CSV" }).click();
  expect((await download).suggestedFilename()).toMatch(/\.csv$/);
  await screen(page, "billing");

  // A second node for the operator to force-release.
  await nav(page, "Capacity");
  await page.getByRole("link", { name: "Request a node" }).click();
  await page.getByRole("button", { name: /^Request .* per hour$/ }).click();
  await page.waitForURL(/\/allocations\/(?!new$)[^/]+$/);
  secondAllocation = page.url().split("/").pop() ?? "";
});

test("an operator: register a node, force release, credit a tenant, read the audit log", async ({ page }) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Nodes" }).click();
  await expect(page.getByRole("table", { name: "Nodes" })).toBeVisible();
  await page.getByLabel("Name", { exact: true }).fill("e2e-node-1");
  await page.getByLabel("Node type").selectOption({ index: 1 });
  await page.getByLabel("SSH host").fill("127.0.0.1");
  await page.getByLabel("SSH port").fill("22299");
  await page.getByRole("button", { name: "Register node" }).click();
  await expect(page.getByTestId("agent-command")).toContainText("GPUAAS_AGENT_BOOTSTRAP_TOKEN=");
  await screen(page, "admin-node-registered");
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page.getByRole("cell", { name: "e2e-node-1", exact: true })).toBeVisible();
  await screen(page, "admin-nodes");

  await page.getByRole("link", { name: "All allocations" }).click();
  await page.getByRole("button", { name: `Force release ${secondAllocation}` }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Force release" }).click();
  await expect(page.getByRole("dialog")).toBeHidden();
  // The list says why it is being released.
  await expect(page.getByRole("cell", { name: "asked for by a platform operator" }).first()).toBeVisible({
    timeout: 15_000,
  });
  await screen(page, "admin-allocations");
  // Its node is named as on the Nodes page.
  await expect(
    page.getByRole("row").filter({ hasText: "asked for by a platform operator" }).first(),
  ).toContainText(/dev-node-\d+/);
  // Its user is a link to that user's page.
  await page
    .getByRole("row")
    .filter({ hasText: "asked for by a platform operator" })
    .first()
    .getByRole("link", { name: /^User / })
    .click();
  await expect(page.getByText("alice@example.com").first()).toBeVisible();

  await page.getByRole("link", { name: "Credits & refunds" }).click();
  const credit = page.getByRole("form", { name: "Credit a tenant" });
  // Typing a tenant's name offers it (its id is what the field takes when picked).
  await credit.getByLabel("Tenant id").fill("Alice Exam");
  await expect(page.locator(`datalist#tenant-options option[value="${tenantId}"]`)).toHaveAttribute(
    "label",
    /^Alice Example's organisation \(/,
  );
  await credit.getByLabel("Tenant id").fill(tenantId);
  await credit.getByLabel(/^Amount/).fill("7.50");
  await credit.getByLabel("Reason").fill("e2e goodwill");
  await credit.getByRole("button", { name: "Credit tenant" }).click();
  await expect(credit.getByRole("status")).toContainText("Credited $7.50");
  await screen(page, "admin-money");

  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Action").fill("billing.admin_credit");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await expect(
    page.getByRole("table", { name: "Audit events" }).getByText("billing.admin_credit").first(),
  ).toBeVisible();
  await screen(page, "admin-audit");
});

test("storage: a folder, an upload with progress, rename, download, delete", async ({ page }) => {
  await signIn(page, "alice");
  await nav(page, "Storage");
  await expect(page.getByRole("heading", { name: "No files yet" })).toBeVisible();
  await expect(page.getByTestId("storage-usage")).toContainText("used");
  // A path error sits next to the field that caused it.
  const folder = page.getByRole("form", { name: "New folder" });
  await folder.getByLabel("Folder name").fill("..");
  await folder.getByRole("button", { name: "Create folder" }).click();
  await expect(folder.locator(".field .error")).toContainText("That path is not allowed");
  await folder.getByLabel("Folder name").fill("datasets");
  await folder.getByRole("button", { name: "Create folder" }).click();
  await page.getByRole("link", { name: "Folder datasets" }).click();
  await expect(page.getByRole("heading", { name: "This folder is empty" })).toBeVisible();

  // Upload (through the API, with progress).
  const body = Buffer.from("step,loss\n".repeat(60_000));
  await page
    .getByLabel("Upload files")
    .setInputFiles({ name: "train.csv", mimeType: "text/csv", buffer: body });
  await expect(page.getByTestId("upload")).toContainText("uploaded");
  await expect(page.getByRole("cell", { name: "train.csv", exact: true })).toBeVisible();
  await screen(page, "storage");

  // Over quota (answered by the test): the numbers, next to the upload.
  await page.route("**/api/v1/storage/upload?**", (r) =>
    r.fulfill(
      err(
        400,
        "storage_quota_exceeded",
        {},
        {
          used_bytes: 900 * 1024 ** 2,
          reserved_bytes: 0,
          limit_bytes: 1024 ** 3,
          requested_bytes: 200 * 1024 ** 2,
        },
      ),
    ),
  );
  await page
    .getByLabel("Upload files")
    .setInputFiles({ name: "big.bin", mimeType: "application/octet-stream", buffer: Buffer.from("x") });
  await expect(page.getByTestId("upload").filter({ hasText: "big.bin" }).getByRole("alert")).toContainText(
    "900 MiB of 1.0 GiB used",
  );
  await page.unroute("**/api/v1/storage/upload?**");

  // Rename.
  await page.getByRole("button", { name: "Rename train.csv" }).click();
  await page.getByRole("dialog").getByLabel("New name").fill("train-v2.csv");
  await page.getByRole("dialog").getByRole("button", { name: "Rename" }).click();
  await expect(page.getByRole("cell", { name: "train-v2.csv", exact: true })).toBeVisible();

  // Download: the same bytes.
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download train-v2.csv" }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe("train-v2.csv");
  expect(readFileSync((await file.path())!).equals(body)).toBe(true);

  // Delete with confirm, then the folder.
  await page.getByRole("button", { name: "Delete train-v2.csv" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("heading", { name: "This folder is empty" })).toBeVisible();
  await page.getByRole("navigation", { name: "Folder" }).getByRole("link", { name: "Top folder" }).click();
  await page.getByRole("button", { name: "Delete datasets" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("heading", { name: "No files yet" })).toBeVisible();
});

test("an operator: users, a tenant's overrides and ledger, a refund from its row, the ops view and a runbook, the audit CSV", async ({
  page,
}) => {
  // Seven screens scanned and photographed: more than the default 3 minutes on a slow machine.
  test.setTimeout(420_000);
  await signIn(page, "admin");
  // A degraded check names its runbook (a fresh gpuaas dev has none
  // degraded: the answer is the real one with failed events added).
  const opsApi = "**/api/v1/admin/ops**";
  await page.route(opsApi, async (route) => {
    const res = await route.fetch();
    const ops = (await res.json()) as { entries: { name: string }[] };
    ops.entries = [
      { name: "events_failed", status: "degraded", value: 1, runbook: "failed-events" },
      ...ops.entries.filter((e) => e.name !== "events_failed"),
    ] as typeof ops.entries;
    await route.fulfill({ response: res, json: ops });
  });
  await page.getByRole("link", { name: "Ops" }).click();
  await expect(page.getByTestId("ops-summary")).toContainText(/checks degraded/);
  await screen(page, "admin-ops");
  // The runbook reference is a link to its section of the runbooks screen.
  await page.getByRole("link", { name: "Runbook: Events that did not go out" }).click();
  await expect(page).toHaveURL(/\/admin\/runbooks#events-that-did-not-go-out$/);
  const section = page.getByRole("heading", { name: "Events that did not go out", level: 2 });
  await expect(section).toBeFocused();
  await expect(section).toBeInViewport();
  await expect(page.getByRole("navigation", { name: "Contents" })).toContainText("Outbox backlog");
  await screen(page, "admin-runbooks");
  await page.unroute(opsApi);

  // Users: find alice, open her; create a pending user, suspend and reinstate them.
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await page.getByLabel("Email contains").fill("alice");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.getByRole("link", { name: "User alice@example.com" }).click();
  await expect(page.getByRole("heading", { name: "alice@example.com", level: 1 })).toBeVisible();
  await expect(page.getByTestId("tenant-balance")).toBeVisible();
  await screen(page, "admin-user");
  const tenantLink = page.locator("dd a[href^='/admin/tenants/']");
  await expect(tenantLink).toHaveAttribute("href", `/admin/tenants/${tenantId}`);

  await page.getByRole("link", { name: "Users", exact: true }).click();
  const email = `carol-${Date.now()}@example.com`;
  const create = page.getByRole("form", { name: "Create a user" });
  await create.getByLabel("Email", { exact: true }).fill(email);
  await create.getByLabel("Tenant name").fill("Carol Labs");
  await create.getByRole("button", { name: "Create user" }).click();
  await expect(create.getByRole("status")).toContainText("pending until their first sign-in");
  await screen(page, "admin-users");
  await create.getByRole("status").getByRole("link", { name: email }).click();
  await page.getByRole("button", { name: "Suspend" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Suspend user" }).click();
  await expect(page.getByTestId("user-status")).toContainText("suspended");
  await page.getByRole("button", { name: "Reinstate" }).click();
  await expect(page.getByTestId("user-status")).toContainText("active");

  // Tenants: alice's, with an override set and reset.
  await page.getByRole("link", { name: "Tenants", exact: true }).click();
  await expect(page.getByRole("table", { name: "Tenants" })).toBeVisible();
  await screen(page, "admin-tenants");
  await page.goto(`/admin/tenants/${tenantId}`);
  await expect(page.getByRole("table", { name: "Members of the tenant" })).toContainText("alice@example.com");
  const quota = page.getByLabel("Tenant value of storage.quota_bytes");
  await quota.fill("1073741824");
  await page.getByRole("button", { name: "Override storage.quota_bytes" }).click();
  await expect(page.getByRole("button", { name: "Reset storage.quota_bytes" })).toBeVisible();
  await screen(page, "admin-tenant");
  await page.getByRole("button", { name: "Reset storage.quota_bytes" }).click();
  await expect(page.getByRole("button", { name: "Reset storage.quota_bytes" })).toBeHidden();

  // Alice's ledger, newest first, 20 entries a page: her top-up is behind
  // the usage debits. Page on until its row offers Refund.
  const ledger = page.getByRole("table", { name: "Ledger of the tenant" });
  await expect(ledger.getByText("usage debit").first()).toBeVisible();
  const refundRow = ledger.getByRole("link", { name: `Refund credit ${creditEntryId}` });
  const pages = page.getByRole("navigation", { name: "Ledger of the tenant pages" });
  for (let n = 1; !(await refundRow.isVisible()); n++) {
    expect(n, "alice's top-up is in her tenant's ledger").toBeLessThan(30);
    const first = (await ledger.getByRole("row").nth(1).textContent()) ?? "";
    await pages.getByRole("button", { name: "Next" }).click();
    await expect(pages).toContainText(`Page ${n + 1}`);
    await expect(ledger.getByRole("row").nth(1)).not.toHaveText(first);
  }
  // A refund of that top-up through the payment provider (the dev provider
  // confirms it), from its row: the form comes with the tenant and the credit.
  await refundRow.click();
  await expect(page.getByTestId("refund-prefilled")).toContainText(creditEntryId);
  const refund = page.getByRole("form", { name: "Refund a payment" });
  await expect(refund.getByLabel("Tenant id")).toHaveValue(tenantId);
  await expect(refund.getByLabel("Credit entry id")).toHaveValue(creditEntryId);
  await screen(page, "admin-money-refund");
  await refund.getByLabel(/^Amount/).fill("1.00");
  await refund.getByLabel("Reason").fill("e2e refund");
  await refund.getByRole("button", { name: "Refund payment" }).click();
  await expect(refund.getByRole("status")).toContainText("Refund of $1.00");
  await expect(
    page.getByRole("table", { name: "Refund requests" }).getByText("succeeded").first(),
  ).toBeVisible({
    timeout: 60_000,
  });
  // A credited payment session's Refund fills both refund forms with its tenant and credit.
  await page.goto("/admin/money");
  await expect(refund.getByLabel("Credit entry id")).toHaveValue("");
  const sessionRefund = page
    .getByRole("table", { name: "Payment sessions" })
    .getByRole("button", { name: /^Refund the payment of / })
    .first();
  await sessionRefund.click();
  await expect(refund.getByLabel("Credit entry id")).toHaveValue(/^[0-9a-f-]{36}$/);
  const sessionCredit = await refund.getByLabel("Credit entry id").inputValue();
  await expect(page.getByTestId("refund-prefilled")).toContainText(sessionCredit);
  await expect(refund.getByLabel("Tenant id")).not.toHaveValue("");
  await expect(page.getByRole("form", { name: "Refund credits" }).getByLabel("Credit entry id")).toHaveValue(
    sessionCredit,
  );

  // The audit log as CSV, with the filters applied.
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Action").fill("billing.admin_credit");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await expect(page.getByRole("table", { name: "Audit events" })).toBeVisible();
  const csv = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export CSV" }).click();
  const got = await csv;
  expect(got.suggestedFilename()).toMatch(/^audit-.*\.csv$/);
  const text = readFileSync((await got.path())!, "utf8");
  expect(text.split("\n")[0]).toContain("action");
  expect(text).toContain("billing.admin_credit");
  expect(text).not.toContain("storage.mkdir");
});

test("by keyboard only: add an SSH key and delete it with its confirm dialog", async ({ page }) => {
  await signIn(page, "bob");
  // Focus starts on the page heading; the main navigation is before it.
  await expect(page.getByRole("heading", { name: "Capacity", level: 1 })).toBeFocused();
  const keysLink = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "SSH keys" });
  for (let i = 0; i < 30 && !(await keysLink.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Shift+Tab");
  }
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "SSH keys", level: 1 })).toBeFocused();
  const name = page.getByLabel("Name", { exact: true });
  for (let i = 0; i < 20 && !(await name.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type("kbd");
  await page.keyboard.press("Tab");
  await page.keyboard.type(newPublicKey("bob@kbd"));
  await page.keyboard.press("Tab"); // to the button
  await page.keyboard.press("Enter");
  await expect(page.getByRole("cell", { name: "kbd", exact: true })).toBeVisible();
  const del = page.getByRole("button", { name: "Delete key kbd" });
  await del.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("dialog")).toBeVisible();
  await expect(page.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(del).toBeFocused(); // focus returns to the trigger
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Delete key" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "No SSH keys yet" })).toBeVisible();
});

// Each screen's main read, answered by the test instead of the API.
const SCREENS: { name: string; path: string; api: string; empty: unknown; emptyText?: RegExp }[] = [
  { name: "capacity", path: "/", api: "**/api/v1/skus", empty: { skus: [] }, emptyText: /No node types yet/ },
  {
    name: "allocations",
    path: "/allocations",
    api: "**/api/v1/allocations?**",
    empty: { allocations: [] },
    emptyText: /No allocations yet/,
  },
  {
    name: "request",
    path: "/allocations/new",
    api: "**/api/v1/skus",
    empty: { skus: [] },
    emptyText: /No node types/,
  },
  {
    name: "allocation",
    path: "/allocations/00000000-0000-0000-0000-000000000000",
    api: "**/api/v1/allocations/0000*",
    empty: null,
  },
  {
    name: "ssh-keys",
    path: "/keys",
    api: "**/api/v1/ssh-keys",
    empty: { ssh_keys: [] },
    emptyText: /No SSH keys yet/,
  },
  {
    name: "billing",
    path: "/billing",
    api: "**/api/v1/billing/usage?**",
    empty: { usage: [] },
    emptyText: /No usage yet/,
  },
  { name: "settings", path: "/settings", api: "**/api/v1/projects", empty: null },
  {
    name: "email-preferences",
    path: "/settings/notifications",
    api: "**/api/v1/notifications/preferences",
    empty: null,
  },
  {
    name: "webhooks",
    path: "/settings/webhooks",
    api: "**/api/v1/projects/*/webhooks",
    empty: { endpoints: [] },
    emptyText: /No webhook endpoints yet/,
  },
  {
    name: "webhook",
    path: "/settings/webhooks/00000000-0000-0000-0000-000000000000",
    api: "**/api/v1/projects/*/webhooks/0000*",
    empty: null,
  },
  {
    name: "api-keys",
    path: "/settings/api-keys",
    api: "**/api/v1/api-keys",
    empty: { api_keys: [] },
    emptyText: /No API keys yet/,
  },
  {
    name: "service-accounts",
    path: "/settings/service-accounts",
    api: "**/api/v1/projects/*/service-accounts",
    empty: { service_accounts: [] },
    emptyText: /No service accounts yet/,
  },
  {
    name: "admin-nodes",
    path: "/admin/nodes",
    api: "**/api/v1/admin/nodes**",
    empty: { nodes: [] },
    emptyText: /No nodes/,
  },
  {
    name: "admin-allocations",
    path: "/admin/allocations",
    api: "**/api/v1/admin/allocations**",
    empty: { allocations: [] },
    emptyText: /No allocations/,
  },
  {
    name: "admin-money",
    path: "/admin/money",
    api: "**/api/v1/admin/payments/sessions**",
    empty: { sessions: [] },
    emptyText: /No payment sessions/,
  },
  { name: "admin-policies", path: "/admin/policies", api: "**/api/v1/admin/policies", empty: null },
  {
    name: "admin-audit",
    path: "/admin/audit",
    api: "**/api/v1/admin/audit-log**",
    empty: { events: [] },
    emptyText: /No events match/,
  },
  {
    name: "storage",
    path: "/storage",
    api: "**/api/v1/storage/list**",
    empty: { path: "/", entries: [] },
    emptyText: /No files yet/,
  },
  {
    name: "inbox",
    path: "/notifications",
    api: "**/api/v1/notifications?**",
    empty: { notifications: [], unread: 0 },
    emptyText: /No notifications yet/,
  },
  {
    name: "admin-ops",
    path: "/admin/ops",
    api: "**/api/v1/admin/ops**",
    empty: null,
  },
  { name: "admin-runbooks", path: "/admin/runbooks", api: "**/api/v1/admin/runbooks", empty: null },
  {
    name: "admin-users",
    path: "/admin/users",
    api: "**/api/v1/admin/users?**",
    empty: { users: [] },
    emptyText: /No users match/,
  },
  {
    name: "admin-user",
    path: "/admin/users/00000000-0000-0000-0000-000000000000",
    api: "**/api/v1/admin/users/0000*",
    empty: null,
  },
  {
    name: "admin-tenants",
    path: "/admin/tenants",
    api: "**/api/v1/admin/tenants?**",
    empty: { tenants: [] },
    emptyText: /No tenants match/,
  },
  {
    name: "admin-tenant",
    path: "/admin/tenants/00000000-0000-0000-0000-000000000000",
    api: "**/api/v1/admin/tenants/0000*",
    empty: null,
  },
];

test("every screen's error, restricted, rate-limited and empty states", async ({ page }) => {
  test.setTimeout(600_000);
  await signIn(page, "admin");
  for (const s of SCREENS) {
    const states: {
      label: string;
      reply: { status: number; headers: Record<string, string>; body: string };
      text: RegExp;
    }[] = [
      { label: "error", reply: err(500, "internal_error"), text: /Could not load[\s\S]*e2e-corr/ },
      { label: "restricted", reply: err(403, "forbidden"), text: /Restricted/ },
      {
        label: "rate-limited",
        reply: err(429, "rate_limited", { "Retry-After": "30" }),
        text: /try again in \d+ s/,
      },
    ];
    if (s.empty)
      states.push({
        label: "empty",
        reply: {
          status: 200,
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(s.empty),
        },
        text: s.emptyText ?? /./,
      });
    for (const st of states) {
      await page.route(s.api, (route) => route.fulfill(st.reply));
      await page.goto(s.path);
      await expect(page.locator("main"), `${s.name} ${st.label}`).toContainText(st.text, { timeout: 30_000 });
      // The states are shared components: scanned and photographed on the first screen.
      if (s.name === "capacity") await screen(page, `state-${st.label}`);
      await page.unroute(s.api);
    }
  }
});

test("an expired session asks to sign in again and comes back", async ({ page }) => {
  await signIn(page, "alice", "/billing");
  // From now on the access token is refused and the refresh cookie is dead.
  const api = /\/api\/v1\/(?!auth\/)/;
  await page.route("**/api/v1/auth/token/refresh", (r) => r.fulfill(err(401, "session_ended")));
  await page.route(api, (r) => r.fulfill(err(401, "token_expired")));
  await nav(page, "Settings");
  await expect(page.getByText(/Your session ended/)).toBeVisible();
  await screen(page, "session-expired");
  await page.unroute("**/api/v1/auth/token/refresh");
  await page.unroute(api);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("alice");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(/\/settings$/);
  await expect(page.getByRole("heading", { name: "Settings", level: 1 })).toBeVisible();
});

test("settings: a colleague is added to a project by email; nobody of the organisation has bob's", async ({
  page,
}) => {
  await signIn(page, "alice");
  await nav(page, "Settings");
  const who = page.getByLabel("Email or user id");
  const add = page.getByRole("button", { name: "Add member" });
  // bob is not of alice's organisation (signed in or not): not found, and told what to do instead.
  await who.fill("bob@example.com");
  await add.click();
  await expect(page.getByText(/no user of your organisation has this email: invite them/)).toBeVisible();
  // alice's own email, in another case: found, and already a member of the project.
  await who.fill("ALICE@example.com");
  await add.click();
  await expect(page.getByText(/already a member of this project/)).toBeVisible();
});

test("email preferences: the inbox links to them, a kind turned off stays off, and back on", async ({
  page,
}) => {
  await signIn(page, "alice");
  await page.getByRole("link", { name: /^Inbox/ }).click();
  await page.getByRole("link", { name: "email preferences" }).click();
  // The path every notification email links to.
  await page.waitForURL(/\/settings\/notifications$/);
  const form = page.getByRole("form", { name: "Email notifications" });
  const paid = form.getByRole("checkbox", { name: /^Payment received/ });
  const save = form.getByRole("button", { name: "Save" });
  await expect(paid).toBeChecked();
  await expect(save).toBeDisabled();
  await paid.uncheck();
  await save.click();
  await expect(page.getByText("Email preferences saved.")).toBeAttached();
  await screen(page, "email-preferences");
  // Saved on the server: a fresh load (the address an email opens) shows it off.
  await page.goto("/settings/notifications");
  await expect(form.getByRole("checkbox", { name: /^Payment received/ })).not.toBeChecked();
  await expect(form.getByRole("checkbox", { name: /^Your node is ready/ })).toBeChecked();
  await form.getByRole("checkbox", { name: /^Payment received/ }).check();
  await save.click();
  await expect(save).toBeDisabled();
});

/** A top-up through the dev checkout (its payments.balance_credited event goes to the tenant's webhooks). */
async function topUp(page: Page) {
  await nav(page, "Billing");
  await page.getByRole("button", { name: "$25.00" }).click();
  await page.getByRole("button", { name: "Continue to payment" }).click();
  await page.waitForURL(/\/dev-pay\//);
  await page.locator("#pay").click();
  await page.waitForURL(/\/billing\?checkout=success/);
  await expect(page.getByTestId("checkout-outcome")).toContainText("Payment received", { timeout: 60_000 });
}

/** Whether a Standard Webhooks signature header carries a signature made with this secret. */
function signedWith(secret: string, h: { id: string; timestamp: string; signature: string; body: string }) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const mac = createHmac("sha256", key).update(`${h.id}.${h.timestamp}.${h.body}`).digest("base64");
  return h.signature.split(" ").includes(`v1,${mac}`);
}

test("webhooks: register (a refused URL first), the secret once, deliveries, edit, rotate, disable, delete", async ({
  page,
}) => {
  test.setTimeout(300_000);
  // A local receiver (gpuaas dev allows private targets): the first delivery is answered 503, then 204.
  const got: { id: string; timestamp: string; signature: string; body: string; answered: number }[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const answered = got.length === 0 ? 503 : 204;
      const header = (n: string) => String(req.headers[n] ?? "");
      got.push({
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        answered,
      });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((ok) => receiver.listen(0, "127.0.0.1", ok));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  try {
    await signIn(page, "alice", "/settings");
    await page.getByRole("link", { name: /^Webhooks of / }).click();
    await page.waitForURL(/\/settings\/webhooks$/);
    await expect(page.getByRole("heading", { name: "No webhook endpoints yet" })).toBeVisible();

    // A URL the API refuses: its reason under the field, nothing typed is lost.
    const form = page.getByRole("form", { name: "Register an endpoint" });
    await form.getByLabel("Endpoint URL").fill("ftp://127.0.0.1/hook");
    await form.getByLabel("Description (optional)").fill("e2e receiver");
    await form.getByRole("checkbox", { name: /^Payment received/ }).check();
    await form.getByRole("button", { name: "Register endpoint" }).click();
    await expect(form.locator(".field .error")).toHaveText("the URL must use https");
    await expect(form.getByLabel("Description (optional)")).toHaveValue("e2e receiver");
    await expect(form.getByRole("checkbox", { name: /^Payment received/ })).toBeChecked();

    // Registered: the signing secret is shown once.
    await form.getByLabel("Endpoint URL").fill(hookUrl);
    await form.getByRole("button", { name: "Register endpoint" }).click();
    const dialog = page.getByRole("dialog", { name: "Endpoint registered: copy its signing secret" });
    await expect(dialog).toContainText("you will not see it again");
    const secret = (await dialog.getByTestId("webhook-secret").textContent()) ?? "";
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    await expect(dialog.getByRole("button", { name: "Copy secret" })).toBeVisible();
    await screen(page, "webhook-secret");
    await dialog.getByRole("button", { name: "Done" }).click();
    await expect(page.getByTestId("webhook-secret")).toHaveCount(0);
    await expect(form.getByLabel("Endpoint URL")).toHaveValue("");
    const table = page.getByRole("table", { name: /^Webhook endpoints of / });
    await expect(table).toContainText("payments.balance_credited");
    await expect(table).toContainText("e2e receiver");
    await screen(page, "webhooks");

    // An event: a payment. The receiver answers the first attempt 503, the retry (5 s later) 204,
    // and the deliveries are signed with the secret the console showed.
    await topUp(page);
    await expect.poll(() => got.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    expect(got[1]!.id).toBe(got[0]!.id); // the same webhook-id on the retry
    expect(signedWith(secret, got[1]!)).toBe(true);
    expect(JSON.parse(got[1]!.body).type).toBe("payments.balance_credited");

    // Its page: the delivery log, newest first, each attempt with its time and response code.
    await page.goto("/settings/webhooks");
    await page.getByRole("link", { name: `Endpoint ${hookUrl}` }).click();
    await expect(page.getByRole("heading", { name: hookUrl, level: 1 })).toBeVisible();
    const log = page.getByRole("table", { name: "Deliveries" });
    const delivery = log.getByRole("row").filter({ hasText: got[0]!.id });
    await expect(delivery).toContainText("payments.balance_credited");
    await expect(delivery).toContainText("succeeded");
    await expect(delivery).toContainText(/#1 .+ — 503/);
    await expect(delivery).toContainText(/#2 .+ — 204/);
    const status = page.getByRole("combobox", { name: /^Status/ });
    await status.selectOption("failed");
    await expect(page.getByRole("heading", { name: "No failed deliveries" })).toBeVisible();
    await status.selectOption("succeeded");
    await expect(log.getByRole("row").filter({ hasText: got[0]!.id })).toBeVisible();
    await status.selectOption("");

    // Edit: the description.
    await page.getByRole("button", { name: "Edit" }).click();
    const edit = page.getByRole("dialog", { name: "Edit the endpoint" });
    await expect(edit.getByLabel("Endpoint URL")).toHaveValue(hookUrl);
    await edit.getByLabel("Description (optional)").fill("e2e receiver, edited");
    await screen(page, "webhook-edit");
    await edit.getByRole("button", { name: "Save" }).click();
    await expect(edit).toBeHidden();
    await expect(page.locator(".kv")).toContainText("e2e receiver, edited");

    // Rotate: a new secret, shown once; the previous one keeps signing for 24 h,
    // so the next delivery carries both signatures.
    await page.getByRole("button", { name: "Rotate secret" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate secret" }).click();
    const rotated = page.getByRole("dialog", { name: "New signing secret" });
    await expect(rotated).toContainText("you will not see it again");
    await expect(rotated).toContainText("The previous secret keeps signing deliveries until");
    const secret2 = (await rotated.getByTestId("webhook-secret").textContent()) ?? "";
    expect(secret2).toMatch(/^whsec_/);
    expect(secret2).not.toBe(secret);
    await rotated.getByRole("button", { name: "Done" }).click();
    await expect(page.getByTestId("webhook-secret")).toHaveCount(0);
    await topUp(page);
    await expect.poll(() => got.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    expect(signedWith(secret2, got[2]!)).toBe(true);
    expect(signedWith(secret, got[2]!)).toBe(true);
    await page.goto("/settings/webhooks");
    await page.getByRole("link", { name: `Endpoint ${hookUrl}` }).click();
    await expect(log.getByRole("row").filter({ hasText: got[2]!.id })).toContainText("succeeded");
    await screen(page, "webhook");

    // Disable (confirmed) and enable again.
    await page.getByRole("button", { name: "Disable" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disable endpoint" }).click();
    await expect(page.getByTestId("webhook-status")).toContainText("disabled by a project admin");
    await expect(page.getByRole("status").filter({ hasText: "This endpoint is disabled" })).toBeVisible();
    await screen(page, "webhook-disabled");
    await page.getByRole("button", { name: "Enable" }).click();
    await expect(page.getByTestId("webhook-status")).toHaveText("enabled");

    // A disabled endpoint's notification links here with ?project= (its project): opened while
    // another project is active, it makes the endpoint's project the active one.
    const projectSelect = page.getByRole("combobox", { name: "Project" });
    const home = await projectSelect.inputValue();
    const endpointPath = new URL(page.url()).pathname;
    await page.goto("/settings");
    await page.getByLabel("New project name").fill("e2e other");
    await page.getByRole("button", { name: "Create project" }).click();
    await expect(projectSelect.getByRole("option", { name: "e2e other" })).toHaveCount(1);
    await projectSelect.selectOption({ label: "e2e other" });
    await expect(projectSelect).not.toHaveValue(home);
    await page.goto(`${endpointPath}?project=${home}`);
    await expect(page.getByRole("heading", { name: hookUrl, level: 1 })).toBeVisible();
    await expect(projectSelect).toHaveValue(home);
    await expect(page).toHaveURL(new RegExp(`${endpointPath}$`));

    // Delete, confirmed: back to the list, empty again.
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete endpoint" }).click();
    await page.waitForURL(/\/settings\/webhooks$/);
    await expect(page.getByRole("heading", { name: "No webhook endpoints yet" })).toBeVisible();
  } finally {
    receiver.close();
  }
});

test("API keys: create one (refused without a scope first), call the API with it, revoke it", async ({
  page,
  context,
  request,
}) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await signIn(page, "alice", "/settings");
  await page.getByRole("link", { name: "Your API keys" }).click();
  await page.waitForURL(/\/settings\/api-keys$/);
  await expect(page.getByRole("heading", { name: "No API keys yet" })).toBeVisible();

  // No scope: the API's reason under the scopes, nothing typed is lost.
  const form = page.getByRole("form", { name: "Create an API key" });
  const projectId = await form.getByLabel("Project", { exact: true }).inputValue(); // the active project, preselected
  expect(projectId).not.toBe("");
  await form.getByLabel("Name", { exact: true }).fill("e2e script");
  await form.getByLabel(/^Daily spend cap/).fill("50");
  await form.getByRole("checkbox", { name: /^Read/ }).uncheck();
  await form.getByRole("button", { name: "Create key" }).click();
  await expect(form.getByRole("group", { name: "Scopes" }).getByRole("alert")).toHaveText(
    "scopes must not be empty",
  );
  await expect(form.getByLabel("Name", { exact: true })).toHaveValue("e2e script");
  await expect(form.getByLabel(/^Daily spend cap/)).toHaveValue("50");

  // Created: the key is shown once, with Copy and how to use it.
  await form.getByRole("checkbox", { name: /^Read/ }).check();
  await form.getByRole("checkbox", { name: /^Allocations/ }).check();
  await form.getByLabel("Expires", { exact: true }).selectOption("30");
  await form.getByRole("button", { name: "Create key" }).click();
  const dialog = page.getByRole("dialog", { name: "API key created: copy it now" });
  await expect(dialog).toContainText("you will not see it again");
  const shown = (await dialog.getByTestId("api-key-secret").textContent()) ?? "";
  expect(shown).toMatch(/^gpa_[0-9A-Za-z]{49}$/);
  await dialog.getByRole("button", { name: "Copy key" }).click();
  await expect(dialog.getByRole("button", { name: /^Copied/ })).toBeVisible();
  const key = await page.evaluate(() => navigator.clipboard.readText());
  expect(key).toBe(shown);
  await expect(dialog.getByTestId("api-key-usage")).toContainText("gpuaas login --api");
  await expect(dialog.getByTestId("api-key-usage")).toContainText(`X-Project-ID: ${projectId}`);
  await screen(page, "api-key-created");
  await dialog.getByRole("button", { name: "Done" }).click();
  await expect(page.getByTestId("api-key-secret")).toHaveCount(0);
  await expect(form.getByLabel("Name", { exact: true })).toHaveValue("");
  const row = page
    .getByRole("table", { name: "Your API keys" })
    .getByRole("row")
    .filter({ hasText: "e2e script" });
  await expect(row).toContainText(`${shown.slice(0, 16)}…`); // gpa_ and its lookup id
  await expect(row).toContainText("$50.00 a day");

  // The key works: the project's allocations, as a script would ask for them.
  const call = () =>
    request.get("/api/v1/allocations", {
      headers: { Authorization: `Bearer ${key}`, "X-Project-ID": projectId },
    });
  expect((await call()).status()).toBe(200);
  await page.reload();
  await expect(row.getByRole("cell").nth(6)).not.toHaveText("never"); // last used
  await screen(page, "api-keys");

  // Revoked (confirmed): gone from the list, and refused within a second.
  await row.getByRole("button", { name: "Revoke e2e script" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
  await expect(page.getByRole("heading", { name: "No API keys yet" })).toBeVisible();
  await expect.poll(async () => (await call()).status(), { timeout: 5_000 }).toBe(401);
});

test("service accounts: create one, a client secret exchanged for a token, the limit of two, revoke, disable", async ({
  page,
  request,
}) => {
  // alice owns her organisation (the first to sign in to it): she manages its service accounts.
  await signIn(page, "alice", "/settings");
  await page.getByRole("link", { name: /^Service accounts of / }).click();
  await page.waitForURL(/\/settings\/service-accounts$/);
  await expect(page.getByRole("heading", { name: "No service accounts yet" })).toBeVisible();

  // A blank name: the API's reason under the field, the role chosen is kept.
  const form = page.getByRole("form", { name: "Create a service account" });
  await form.getByLabel("Name", { exact: true }).fill("   ");
  await form.getByLabel("Role in the project").selectOption("member");
  await form.getByRole("button", { name: "Create account" }).click();
  await expect(form.locator(".field .error")).toHaveText("name must not be empty");
  await expect(form.getByLabel("Role in the project")).toHaveValue("member");
  await form.getByLabel("Name", { exact: true }).fill("e2e-ci");
  await form.getByRole("button", { name: "Create account" }).click();
  const card = page.getByRole("article", { name: "e2e-ci" });
  await expect(card).toContainText("No client secrets yet");
  await expect(card).toContainText("Member (read, allocations, storage)");
  await expect(form.getByLabel("Name", { exact: true })).toHaveValue("");

  // A client secret, shown once with the client id and how to exchange them.
  const addSecret = async () => {
    await card.getByRole("button", { name: "Add a client secret to e2e-ci" }).click();
    await page
      .getByRole("dialog", { name: "Add a client secret to e2e-ci" })
      .getByRole("button", { name: "Add secret" })
      .click();
  };
  const shown = page.getByRole("dialog", { name: "Client secret added: copy it now" });
  const readShown = async () => {
    await expect(shown).toContainText("you will not see it again");
    const id = (await shown.getByTestId("client-id").textContent()) ?? "";
    const secret = (await shown.getByTestId("client-secret").textContent()) ?? "";
    expect(secret).toMatch(/^gps_[0-9A-Za-z]{49}$/);
    return { id, secret };
  };
  await addSecret();
  const first = await readShown();
  const usage = shown.getByTestId("service-token-usage");
  await expect(usage).toContainText("/api/v1/auth/service-token");
  await expect(usage).toContainText(`\\"client_id\\": \\"${first.id}\\"`);
  const projectId = /X-Project-ID: (\S+?)"/.exec((await usage.textContent()) ?? "")?.[1] ?? "";
  expect(projectId).not.toBe("");
  await screen(page, "service-account-secret");
  await shown.getByRole("button", { name: "Done" }).click();
  await expect(page.getByTestId("client-secret")).toHaveCount(0);

  // Exchanged for a token through the token route (200), which the API takes in the account's project.
  const exchange = (secret: string) =>
    request.post("/api/v1/auth/service-token", {
      data: { grant_type: "client_credentials", client_id: first.id, client_secret: secret },
    });
  const granted = await exchange(first.secret);
  expect(granted.status()).toBe(200);
  const token = (await granted.json()) as { access_token: string; token_type: string; scope: string };
  expect(token.token_type).toBe("Bearer");
  expect(token.scope).toBe("read allocations storage");
  const listed = await request.get("/api/v1/allocations", {
    headers: { Authorization: `Bearer ${token.access_token}`, "X-Project-ID": projectId },
  });
  expect(listed.status()).toBe(200);

  // A second secret (for rotation); a third is refused with the API's message, in the dialog.
  await addSecret();
  const second = await readShown();
  await shown.getByRole("button", { name: "Done" }).click();
  await card.getByRole("button", { name: "Add a client secret to e2e-ci" }).click();
  const third = page.getByRole("dialog", { name: "Add a client secret to e2e-ci" });
  await third.getByRole("button", { name: "Add secret" }).click();
  await expect(third.getByRole("alert")).toContainText(
    "The limit of credentials is reached. Revoke one first.",
  );
  await expect(third.getByRole("alert")).toContainText("two active credentials");
  await third.getByRole("button", { name: "Cancel" }).click();
  const secrets = card.getByRole("table", { name: "Client secrets of e2e-ci" });
  await expect(secrets.getByRole("row")).toHaveCount(3);
  // The first secret bought a token, so its row says when; the second has not been used.
  const hint = `${first.secret.slice(0, 8)}…`;
  await expect(secrets.getByRole("row").filter({ hasText: hint })).not.toContainText("never");
  await expect(secrets.getByRole("row").filter({ hasText: `${second.secret.slice(0, 8)}…` })).toContainText(
    "never",
  );
  await screen(page, "service-accounts");

  // Revoke the first (confirmed): the token route refuses it at once; the second still works.
  await card.getByRole("button", { name: `Revoke ${hint} of e2e-ci` }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke secret" }).click();
  await expect(secrets.getByRole("row").filter({ hasText: hint })).toContainText("revoked");
  expect((await exchange(first.secret)).status()).toBe(401);
  expect((await exchange(second.secret)).status()).toBe(200);

  // Disable the account (confirmed): gone from the list, and its other secret refused too.
  await card.getByRole("button", { name: "Disable e2e-ci" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Disable account" }).click();
  await expect(page.getByRole("heading", { name: "No service accounts yet" })).toBeVisible();
  expect((await exchange(second.secret)).status()).toBe(401);
});
