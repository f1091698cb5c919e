// The one typed client. Every call goes through authedFetch: it adds the
// access token and a correlation id, refreshes once on a 401 through the
// refresh cookie and retries, and reports a refused refresh as an expired
// session (the app then asks the user to sign in again and come back).
import createClient from "openapi-fetch";
import type { paths } from "./schema.gen";
import { getSession, refresh } from "./session";
import { ApiError, toApiError } from "./errors";

let projectId: string | undefined;

/** The active project, sent as X-Project-ID unless a call names its own. */
export function setActiveProject(id: string | undefined) {
  projectId = id;
}
export function getActiveProject(): string | undefined {
  return projectId;
}

export function newId(): string {
  if (typeof crypto !== "undefined" && "randomUUID" in crypto) return crypto.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/** The correlation id of the last failed call, for "quote this" messages. */
export let lastCorrelationId: string | undefined;

export async function authedFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const send = (req: Request) => {
    const s = getSession();
    if (s) req.headers.set("Authorization", `Bearer ${s.accessToken}`);
    if (!req.headers.has("X-Correlation-ID")) req.headers.set("X-Correlation-ID", newId());
    // An empty X-Project-ID means "no project" (routes such as /users/me).
    const explicit = req.headers.get("X-Project-ID");
    if (explicit === "") req.headers.delete("X-Project-ID");
    else if (explicit === null && projectId) req.headers.set("X-Project-ID", projectId);
    return fetch(req);
  };
  let res: Response;
  try {
    res = await send(input);
  } catch {
    throw new ApiError({ status: 0, code: "network_error" });
  }
  if (res.status === 401 && getSession() !== null) {
    const s = await refresh();
    if (s) {
      res = await send(retry);
    }
  }
  if (!res.ok) lastCorrelationId = res.headers.get("X-Correlation-ID") ?? undefined;
  return res;
}

export function makeClient(baseUrl: string) {
  return createClient<paths>({ baseUrl, fetch: authedFetch, credentials: "same-origin" });
}

export const api = makeClient(typeof location !== "undefined" ? location.origin : "http://localhost");

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Turns an openapi-fetch result into its data or a thrown ApiError. */
export async function unwrap<T>(p: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok || error !== undefined) throw toApiError(response, error);
  return data as T;
}

/** For responses without a body (204). */
export async function unwrapEmpty(p: Promise<Result<unknown>>): Promise<void> {
  const { error, response } = await p;
  if (!response.ok || error !== undefined) throw toApiError(response, error);
}

/** Downloads a file from an authenticated GET (the usage and audit CSVs, small stored files). */
export async function download(
  path: string,
  fallbackName: string,
  headers?: Record<string, string>,
): Promise<void> {
  const res = await authedFetch(new Request(location.origin + path, { credentials: "same-origin", headers }));
  if (!res.ok) throw toApiError(res, await res.json().catch(() => undefined));
  const blob = await res.blob();
  const disp = res.headers.get("Content-Disposition") ?? "";
  const name = filenameFrom(disp) ?? fallbackName;
  saveBlob(blob, name);
}

/** The file name of a Content-Disposition (RFC 6266: filename*=UTF-8'' first). */
export function filenameFrom(disp: string): string | undefined {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disp)?.[1];
  if (star) {
    try {
      return decodeURIComponent(star);
    } catch {
      // fall through to the plain name
    }
  }
  return /filename="([^"]+)"/.exec(disp)?.[1];
}

export function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
