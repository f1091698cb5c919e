import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { authedFetch, makeClient, setActiveProject, unwrap } from "./client";
import { configureSession, getSession, onSessionChange, refresh, setSessionForTest } from "./session";
import { ApiError, ERROR_MESSAGES, detailedMessage, humanMessage, toApiError } from "./errors";

const BASE = "http://console.test";
const user = { id: "u1", email: "a@example.com", display_name: "A", role: "user", resource_id: "r" } as const;
const tokens = (t: string) => ({
  access_token: t,
  refresh_token: "r",
  expires_in: 300,
  token_type: "Bearer",
  user,
});
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const err = (status: number, code: string, extra: Record<string, unknown> = {}) =>
  json(status, { error: { code, message: `server says ${code}`, correlation_id: "c-1", ...extra } });

let calls: Request[];
let answers: ((r: Request) => Response)[];

beforeEach(() => {
  calls = [];
  answers = [];
  configureSession({ baseUrl: BASE, clock: () => 1_000_000 });
  setSessionForTest(null);
  setActiveProject(undefined);
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = input instanceof Request ? input : new Request(String(input), init);
      calls.push(req);
      const next = answers.shift();
      if (!next) throw new Error("unexpected fetch " + req.url);
      return next(req);
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

describe("authedFetch", () => {
  it("sends the access token, a correlation id and the active project", async () => {
    setSessionForTest({ accessToken: "A1", expiresAt: 2_000_000, user });
    setActiveProject("p1");
    answers.push(() => json(200, { skus: [] }));
    const api = makeClient(BASE);
    await unwrap(api.GET("/api/v1/skus"));
    expect(calls[0]!.headers.get("Authorization")).toBe("Bearer A1");
    expect(calls[0]!.headers.get("X-Correlation-ID")).toMatch(/.{8,}/);
    expect(calls[0]!.headers.get("X-Project-ID")).toBe("p1");
  });

  it("an empty X-Project-ID means none", async () => {
    setActiveProject("p1");
    answers.push(() => json(200, {}));
    await authedFetch(new Request(BASE + "/api/v1/users/me", { headers: { "X-Project-ID": "" } }));
    expect(calls[0]!.headers.has("X-Project-ID")).toBe(false);
  });

  it("refreshes once on a 401 and retries the request with the new token and the same body", async () => {
    setSessionForTest({ accessToken: "OLD", expiresAt: 2_000_000, user });
    answers.push(() => err(401, "token_expired"));
    answers.push(() => json(200, tokens("NEW")));
    answers.push(() => json(201, { id: "k1" }));
    const res = await authedFetch(
      new Request(BASE + "/api/v1/ssh-keys", { method: "POST", body: JSON.stringify({ name: "n" }) }),
    );
    expect(res.status).toBe(201);
    expect(calls.map((c) => c.url.replace(BASE, ""))).toEqual([
      "/api/v1/ssh-keys",
      "/api/v1/auth/token/refresh",
      "/api/v1/ssh-keys",
    ]);
    expect(calls[1]!.credentials).toBe("same-origin");
    expect(calls[2]!.headers.get("Authorization")).toBe("Bearer NEW");
    expect(await calls[2]!.text()).toBe('{"name":"n"}');
    expect(getSession()?.accessToken).toBe("NEW");
  });

  it("concurrent 401s share one refresh (refresh tokens rotate: using one twice ends the session)", async () => {
    setSessionForTest({ accessToken: "OLD", expiresAt: 2_000_000, user });
    let refreshes = 0;
    const handler = (r: Request) => {
      if (r.url.endsWith("/refresh")) {
        refreshes++;
        return json(200, tokens("NEW"));
      }
      return r.headers.get("Authorization") === "Bearer NEW" ? json(200, {}) : err(401, "token_expired");
    };
    for (let i = 0; i < 10; i++) answers.push(handler);
    const out = await Promise.all([1, 2, 3].map(() => authedFetch(new Request(BASE + "/api/v1/skus"))));
    expect(out.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(refreshes).toBe(1);
  });

  it("a refused refresh signs out as expired and leaves the 401 to the caller", async () => {
    setSessionForTest({ accessToken: "OLD", expiresAt: 2_000_000, user });
    const reasons: (string | undefined)[] = [];
    const off = onSessionChange((_s, r) => reasons.push(r));
    answers.push(() => err(401, "token_expired"));
    answers.push(() => err(401, "session_ended"));
    const res = await authedFetch(new Request(BASE + "/api/v1/skus"));
    off();
    expect(res.status).toBe(401);
    expect(getSession()).toBeNull();
    expect(reasons).toEqual(["expired"]);
  });

  it("a network failure is an ApiError with a human message", async () => {
    answers.push(() => {
      throw new TypeError("Failed to fetch");
    });
    await expect(authedFetch(new Request(BASE + "/api/v1/skus"))).rejects.toMatchObject({
      code: "network_error",
      human: ERROR_MESSAGES.network_error,
    });
  });
});

describe("refresh", () => {
  it("restores a session from the cookie after a reload", async () => {
    answers.push(() => json(200, tokens("FROM-COOKIE")));
    const s = await refresh();
    expect(s?.accessToken).toBe("FROM-COOKIE");
    expect(s?.expiresAt).toBe(1_000_000 + 300_000);
    expect(calls[0]!.method).toBe("POST");
  });
  it("without a cookie it is signed out, not expired", async () => {
    const reasons: (string | undefined)[] = [];
    const off = onSessionChange((_s, r) => reasons.push(r));
    answers.push(() => err(401, "token_missing"));
    expect(await refresh()).toBeNull();
    off();
    expect(reasons).toEqual([undefined]);
  });
});

describe("error mapping", () => {
  it("maps the ErrorResponse body: code, field, server message, correlation id", async () => {
    const e = toApiError(
      err(400, "validation_failed", { field: "public_key" }),
      JSON.parse(await err(400, "validation_failed", { field: "public_key" }).text()),
    );
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({
      status: 400,
      code: "validation_failed",
      field: "public_key",
      correlationId: "c-1",
    });
    expect(e.human).toBe(ERROR_MESSAGES.validation_failed);
    expect(e.serverMessage).toBe("server says validation_failed");
  });
  it("reads Retry-After on a 429", () => {
    const r = new Response("{}", { status: 429, headers: { "Retry-After": "17" } });
    const e = toApiError(r, { error: { code: "rate_limited", message: "slow", correlation_id: "c" } });
    expect(e.retryAfter).toBe(17);
    expect(toApiError(new Response("", { status: 429 }), undefined).retryAfter).toBe(1);
  });
  it("a body that is not an ErrorResponse still gives a human message", () => {
    expect(toApiError(new Response("<html>", { status: 502 }), undefined).human).toMatch(/./);
    expect(humanMessage("http_418", 418)).toBe("The request failed (418).");
  });
  it("every code the contract and the docs name has a human message", () => {
    const codes = [
      "validation_failed",
      "project_required",
      "unsupported_media_type",
      "token_missing",
      "token_expired",
      "token_invalid",
      "session_ended",
      "insufficient_balance",
      "forbidden",
      "feature_disabled",
      "not_found",
      "conflict",
      "idempotency_request_in_flight",
      "idempotency_response_lost",
      "project_name_taken",
      "already_member",
      "already_invited",
      "last_project_member",
      "payload_too_large",
      "idempotency_key_reused",
      "rate_limited",
      "internal_error",
      "service_unavailable",
      "headers_too_large",
      "method_not_allowed",
      "allocation_cap_reached",
      "no_capacity",
      "ssh_key_required",
      "invalid_state_transition",
      "allocation_not_active",
      "terminal_not_owner",
      "terminal_session_ended",
      "ssh_key_duplicate",
      "node_in_use",
      "amount_out_of_range",
      "currency_not_supported",
      "currency_mismatch",
      "idempotency_key_required",
      "payment_provider_refused",
      "refund_window_exceeded",
      "refund_exceeds_credit",
      "refund_exceeds_balance",
      "not_a_credit",
      "unknown_payment_session",
      "webhook_signature_invalid",
      "storage_path_traversal",
      "storage_quota_exceeded",
      "storage_object_not_found",
      "storage_object_too_large",
      "storage_conflict",
      "storage_upload_size_mismatch",
      "range_not_satisfiable",
      "spend_cap_reached",
      "max_hourly_price_exceeded",
      "insufficient_scope",
      "interactive_required",
      "credential_limit_reached",
      "webhook_url_refused",
      "email_taken",
      "cannot_suspend_self",
      "last_platform_admin",
      "policy_not_tenant_scoped",
      "refund_not_provider_credit",
    ].filter((c) => c !== "webhook_signature_invalid"); // the provider's, never the console's
    for (const c of codes) expect(ERROR_MESSAGES[c], c).toBeTruthy();
  });
});

describe("pagination", () => {
  it("passes the cursor and limit and hands back next_cursor", async () => {
    setSessionForTest({ accessToken: "A", expiresAt: 2_000_000, user });
    answers.push((r) => {
      const u = new URL(r.url);
      expect(u.searchParams.get("cursor")).toBe("c2");
      expect(u.searchParams.get("limit")).toBe("20");
      return json(200, { entries: [], next_cursor: "c3" });
    });
    const api = makeClient(BASE);
    const page = await unwrap(
      api.GET("/api/v1/billing/ledger", { params: { query: { cursor: "c2", limit: 20 } } }),
    );
    expect(page.next_cursor).toBe("c3");
  });
});

describe("detailed messages", () => {
  it("says how full the quota is for storage_quota_exceeded", () => {
    const e = new ApiError({
      status: 400,
      code: "storage_quota_exceeded",
      details: {
        used_bytes: 900 * 1024 * 1024,
        reserved_bytes: 0,
        limit_bytes: 1024 ** 3,
        requested_bytes: 200 * 1024 * 1024,
      },
    });
    expect(detailedMessage(e)).toBe(
      "The project's storage quota is full. 900 MiB of 1.0 GiB used; this file needs 200 MiB.",
    );
  });
  it("falls back to the code's sentence", () => {
    expect(detailedMessage(new ApiError({ status: 409, code: "storage_conflict" }))).toBe(
      "A file or folder with that name already exists.",
    );
  });
});
