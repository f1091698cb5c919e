import { expect, type Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync } from "node:fs";

export const SHOTS = new URL("../screenshots/", import.meta.url).pathname;
mkdirSync(SHOTS, { recursive: true });

/** Signs in through the API's OIDC code + PKCE flow and the dev provider's login page. */
export async function signIn(page: Page, user: string, path = "/") {
  await page.goto(path);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(user);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
}

/** Goes to a screen through the main navigation (no reload). */
export async function nav(page: Page, link: string) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true }).click();
}

async function axe(page: Page, label: string) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    bad.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) })),
    `axe on ${label}`,
  ).toEqual([]);
}

/**
 * Scans a screen with axe-core in both themes (0 serious or critical) and
 * writes its screenshots: light and dark, 1280×800 and 390 px wide.
 */
export async function screen(page: Page, name: string) {
  // Not "networkidle": the notification stream keeps a request open. The
  // screen has loaded when no loading state is left.
  await page.waitForLoadState("load");
  await expect(page.locator(".state[role='status']"), `${name} still loading`).toHaveCount(0);
  for (const theme of ["light", "dark"] as const) {
    await page.evaluate((t) => (document.documentElement.dataset.theme = t), theme);
    await axe(page, `${name} (${theme})`);
    for (const [w, h] of [
      [1280, 800],
      [390, 844],
    ] as const) {
      await page.setViewportSize({ width: w, height: h });
      // Usable at both widths: nothing wider than the window but the tables' own scroll areas.
      // (Polled: the terminal refits to the new width a moment after the resize.)
      await expect
        .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth), {
          message: `${name} at ${w}px scrolls sideways`,
          timeout: 5_000,
        })
        .toBeLessThanOrEqual(1);
      await page.screenshot({ path: `${SHOTS}${name}-${theme}-${w}.png`, fullPage: true });
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.evaluate(() => (document.documentElement.dataset.theme = "light"));
}

/** An ed25519 public key in authorized_keys form. */
export function newPublicKey(comment: string): string {
  const { publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]);
  return `ssh-ed25519 ${blob.toString("base64")} ${comment}`;
}
