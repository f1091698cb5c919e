// Where a runbook the API names can be read. GET /admin/runbooks gives
// sections of the repository's doc/runbook.md; the console shows that
// document at /admin/runbooks (bundled when the console is built).

/** The runbooks screen. */
export const RUNBOOKS_PATH = "/admin/runbooks";

/** The console's link for a runbook URL of the API, or undefined when it is not doc/runbook.md. */
export function runbookHref(url: string): string | undefined {
  const m = /^(?:\.\/)?doc\/runbook\.md(?:#([^#\s]*))?$/.exec(url);
  if (!m) return undefined;
  return m[1] ? `${RUNBOOKS_PATH}#${m[1]}` : RUNBOOKS_PATH;
}
