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
