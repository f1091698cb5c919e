import { useSyncExternalStore } from "react";

export type Theme = "light" | "dark" | "system";
const KEY = "gpuaas.theme";

export function storedTheme(): Theme {
  const t = typeof localStorage !== "undefined" ? localStorage.getItem(KEY) : null;
  return t === "light" || t === "dark" ? t : "system";
}

export function applyTheme(t: Theme) {
  const dark =
    t === "dark" ||
    (t === "system" &&
      typeof matchMedia !== "undefined" &&
      matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

export function setTheme(t: Theme) {
  if (t === "system") localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, t);
  applyTheme(t);
}

/** Follows the system's theme while "System" is chosen (the OS switching to dark at dusk, say). */
export function followSystemTheme() {
  if (typeof matchMedia === "undefined") return;
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (storedTheme() === "system") applyTheme("system");
  });
}

function subscribeTheme(onChange: () => void): () => void {
  const o = new MutationObserver(onChange);
  o.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  return () => o.disconnect();
}

/**
 * The theme in effect ("light" or "dark"), re-rendering on a change: for what
 * reads the theme's colours once when it draws (the spend chart's canvas).
 */
export function useAppliedTheme(): string {
  return useSyncExternalStore(subscribeTheme, () => document.documentElement.dataset.theme ?? "light");
}
