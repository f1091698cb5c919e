/// <reference types="vitest/config" />
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

// The console's first paint must stay small: the entry chunk and everything it
// imports statically, gzipped, at most this many bytes. Every other route is a
// lazy chunk (src/routes.tsx). The build fails above the budget.
export const INITIAL_JS_BUDGET = 200 * 1024;

function initialBudget(): Plugin {
  return {
    name: "gpuaas-initial-js-budget",
    apply: "build",
    generateBundle(_opts, bundle) {
      const entry = Object.values(bundle).find((c) => c.type === "chunk" && c.isEntry);
      if (!entry || entry.type !== "chunk") return;
      const seen = new Set<string>();
      const walk = (name: string) => {
        if (seen.has(name)) return;
        seen.add(name);
        const c = bundle[name];
        if (c && c.type === "chunk") c.imports.forEach(walk);
      };
      walk(entry.fileName);
      let total = 0;
      for (const name of seen) {
        const c = bundle[name];
        if (c && c.type === "chunk") total += gzipSync(c.code).length;
      }
      const kb = (n: number) => (n / 1024).toFixed(1) + " KB";
      if (total > INITIAL_JS_BUDGET) {
        this.error(`initial JavaScript is ${kb(total)} gzipped, over the ${kb(INITIAL_JS_BUDGET)} budget`);
      }
      this.info(`initial JavaScript: ${kb(total)} gzipped (budget ${kb(INITIAL_JS_BUDGET)})`);
    },
  };
}

export default defineConfig({
  plugins: [react(), initialBudget()],
  build: {
    outDir: "static/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // No inline data: modules or scripts: the CSP allows only 'self'.
    assetsInlineLimit: 0,
  },
  server: {
    // The runbooks screen imports the repository's doc/runbook.md.
    fs: { allow: [".", "../../doc/runbook.md"] },
    // `npm run dev` proxies the API of a running `gpuaas dev`.
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/dev-pay": "http://127.0.0.1:8080",
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});
