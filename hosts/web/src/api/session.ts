// The sign-in session: the access token lives in memory only; the refresh
// token lives in the httpOnly gpuaas_refresh cookie (Path=/api/v1/auth), so a
// reload refreshes silently and no script can read it (doc/api/README.md).
import type { components } from "./schema.gen";
import { toApiError, ApiError } from "./errors";

export type User = components["schemas"]["User"];
type TokenResponse = components["schemas"]["TokenResponse"];

export interface Session {
  accessToken: string;
  /** ms since epoch when the access token stops working. */
  expiresAt: number;
  user: User;
}

type Listener = (s: Session | null, reason?: "expired" | "signed_out") => void;

const RETURN_KEY = "gpuaas.returnTo";
const STATE_KEY = "gpuaas.signInStarted";

let current: Session | null = null;
let inflight: Promise<Session | null> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();
let now = () => Date.now();
let base = typeof location !== "undefined" ? location.origin : "http://localhost";

/** For tests: a fixed origin and clock. */
export function configureSession(opts: { baseUrl?: string; clock?: () => number }) {
  if (opts.baseUrl !== undefined) base = opts.baseUrl;
  if (opts.clock) now = opts.clock;
}

export function getSession(): Session | null {
  return current;
}

export function onSessionChange(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

function set(s: Session | null, reason?: "expired" | "signed_out") {
  current = s;
  if (timer) clearTimeout(timer);
  timer = undefined;
  if (s && typeof window !== "undefined") {
    // Refresh a minute before expiry so calls rarely meet a 401.
    const wait = Math.max(5_000, s.expiresAt - now() - 60_000);
    timer = setTimeout(() => void refresh(), wait);
  }
  for (const l of listeners) l(s, reason);
}

function fromTokens(t: TokenResponse): Session {
  return { accessToken: t.access_token, expiresAt: now() + t.expires_in * 1000, user: t.user };
}

async function postTokens(path: string, body?: unknown): Promise<Session> {
  const res = await fetch(base + path, {
    method: "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json: unknown = await res.json().catch(() => undefined);
  if (!res.ok) throw toApiError(res, json);
  return fromTokens(json as TokenResponse);
}

async function doRefresh(): Promise<Session | null> {
  try {
    const s = await postTokens("/api/v1/auth/token/refresh");
    set(s);
    return s;
  } catch (e) {
    // 401: the cookie is missing or the sign-in session is over. Anything
    // else (network, 5xx) keeps what we have and lets the caller decide.
    if (e instanceof ApiError && e.status === 401) {
      const had = current !== null;
      set(null, had ? "expired" : undefined);
      return null;
    }
    throw e;
  }
}

/**
 * Refresh through the cookie. Concurrent callers share one request, and
 * tabs take turns through a Web Lock: the identity provider rotates refresh
 * tokens and ends the session when one is used twice.
 */
export function refresh(): Promise<Session | null> {
  if (inflight) return inflight;
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  const run = new Promise<Session | null>((resolve, reject) => {
    if (locks) void locks.request("gpuaas-refresh", () => doRefresh().then(resolve, reject));
    else doRefresh().then(resolve, reject);
  });
  const p = run.finally(() => {
    inflight = null;
  });
  inflight = p;
  return p;
}

/** Where the browser comes back after the identity provider. */
export function callbackURL(): string {
  return base + "/auth/callback";
}

/** Starts the OIDC code + PKCE sign-in; the API keeps the verifier. */
export function startSignIn(returnTo: string) {
  sessionStorage.setItem(RETURN_KEY, returnTo);
  sessionStorage.setItem(STATE_KEY, "1");
  location.assign(`/api/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent(callbackURL())}`);
}

/** Finishes the sign-in on /auth/callback; returns where to go next. */
export async function completeSignIn(code: string, state: string): Promise<string> {
  const s = await postTokens("/api/v1/auth/oidc/exchange", { code, state, redirect_uri: callbackURL() });
  set(s);
  const to = sessionStorage.getItem(RETURN_KEY) || "/";
  sessionStorage.removeItem(RETURN_KEY);
  sessionStorage.removeItem(STATE_KEY);
  // Only same-origin paths: never an open redirect.
  return to.startsWith("/") && !to.startsWith("//") ? to : "/";
}

export async function signOut(): Promise<void> {
  try {
    await fetch(base + "/api/v1/auth/logout", { method: "POST", credentials: "same-origin" });
  } finally {
    set(null, "signed_out");
  }
}

/** For tests. */
export function setSessionForTest(s: Session | null) {
  set(s);
}
