// ApiError is what every failed call becomes: the contract's ErrorResponse
// (doc/api/README.md) plus the status and the wait of a 429. Screens show
// `human` next to what caused it (the form field named by `field`, or the
// action), never the raw body.
import type { components } from "./schema.gen";

export type ErrorBody = components["schemas"]["ErrorBody"];

// One sentence per documented code. The server's own `message` is shown as a
// detail under it when it says more (it is "safe to show, not to parse").
export const ERROR_MESSAGES: Record<string, string> = {
  validation_failed: "Check this value.",
  project_required: "Choose a project first.",
  unsupported_media_type: "The console sent a request the API does not accept. Reload the page.",
  token_missing: "You are not signed in.",
  token_expired: "Your session expired. Sign in again.",
  token_invalid: "Your session is not valid any more. Sign in again.",
  session_ended: "Your session ended. Sign in again.",
  insufficient_balance: "Your balance is too low for this. Top up on the Billing page first.",
  forbidden: "You do not have permission to do this.",
  feature_disabled: "This feature is turned off on this platform.",
  not_found: "It does not exist, or you cannot see it.",
  conflict: "Someone changed this at the same time. Reload and try again.",
  idempotency_request_in_flight: "The same request is still running. Wait a moment.",
  idempotency_response_lost: "This was already done, but its answer was lost. The page now shows the result.",
  idempotency_key_reused: "This request was already sent with other values. Start again.",
  idempotency_key_required: "The console did not send a retry key. Reload the page and try again.",
  project_name_taken: "A project with this name already exists.",
  already_member: "This person is already a member of the project.",
  already_invited: "This email address has already been invited.",
  last_project_member: "The last member of a project cannot be removed.",
  payload_too_large: "That is too large to send.",
  headers_too_large: "The request was too large. Reload the page.",
  rate_limited: "Too many requests. Wait a moment before trying again.",
  internal_error: "Something went wrong on our side. Quote the correlation id when reporting it.",
  service_unavailable: "A service the platform needs is not answering. Try again shortly.",
  method_not_allowed: "The console used a method the API does not allow. Reload the page.",
  allocation_cap_reached: "You have reached the number of nodes you may hold at once. Release one first.",
  no_capacity: "No node of this type is free right now. Try another type or try again later.",
  ssh_key_required: "Add an SSH key before requesting a node: you need it to log in.",
  invalid_state_transition: "The allocation is not in a state that allows this any more.",
  allocation_not_active: "The allocation is not active.",
  terminal_not_owner: "Only the person who requested this node can open its terminal.",
  terminal_token_invalid: "The terminal link expired. Reconnect.",
  terminal_token_mismatch: "The terminal link was for another node. Reconnect.",
  terminal_session_ended: "That terminal session has ended. Open a new one.",
  terminal_session_exists: "That terminal session is already open.",
  terminal_session_limit: "Too many terminal sessions are open on this node. Close one first.",
  terminal_session_taken_over: "This terminal was opened in another window.",
  terminal_session_unavailable: "The node could not start a shell. Try again.",
  node_unreachable: "The node is not reachable right now.",
  origin_not_allowed: "This page's address is not allowed to open terminals.",
  token_in_query: "The terminal link was malformed.",
  ssh_key_duplicate: "This SSH key is already registered.",
  node_in_use: "The node is still held by an allocation. Release it first.",
  node_retired: "The node is retired.",
  amount_out_of_range: "The amount is outside the allowed range.",
  currency_not_supported: "That currency is not supported.",
  currency_mismatch: "The currency does not match the ledger's.",
  payment_provider_refused: "The payment provider refused the request.",
  unknown_payment_session: "That payment is not known to the platform.",
  refund_window_exceeded: "The credit is older than the refund window.",
  refund_exceeds_credit: "The refund is larger than what is left of the credit.",
  refund_exceeds_balance: "The refund is larger than the balance: spent credit is not refundable.",
  not_a_credit: "Only credits (money received) can be refunded.",
  storage_path_traversal: "That path is not allowed.",
  storage_quota_exceeded: "The project's storage quota is full.",
  storage_object_not_found: "The file does not exist.",
  storage_object_too_large: "The file is too large.",
  storage_conflict: "A file or folder with that name already exists.",
  storage_upload_size_mismatch: "The upload did not match its declared size. Try again.",
  range_not_satisfiable: "That part of the file does not exist.",
  spend_cap_reached: "This key's daily spending cap is reached.",
  max_hourly_price_exceeded: "The price per hour is above the limit you set.",
  insufficient_scope: "This credential is not allowed to do that.",
  interactive_required: "Sign in as a person to do this; keys and service accounts cannot.",
  invalid_client: "The client credentials were refused.",
  credential_limit_reached: "The limit of credentials is reached. Revoke one first.",
  service_account_name_taken: "A service account with this name already exists.",
  api_key_name_taken: "An API key with this name already exists.",
  webhook_url_refused: "That address cannot receive webhooks: use https and a public host.",
  webhook_endpoint_limit: "The project has as many webhook endpoints as it may have.",
  email_taken: "A user with this email address already exists.",
  cannot_suspend_self: "You cannot suspend yourself.",
  last_platform_admin: "This is the last active operator: the platform needs at least one.",
  policy_not_tenant_scoped: "This policy applies to the whole platform and cannot be set per tenant.",
  refund_not_provider_credit: "Only a credit paid through the payment provider can be refunded there.",
  storage_direct_etag_hidden:
    "The object store did not show the console its ETag header: its CORS rules must expose ETag (doc/console.md).",
  storage_direct_failed: "The object store refused part of the upload. Try again.",
  network_error: "The platform could not be reached. Check your connection.",
};

const STATUS_FALLBACK: Record<number, string> = {
  400: "The request was not valid.",
  401: "You are not signed in.",
  402: "Your balance is too low.",
  403: "You do not have permission to do this.",
  404: "It does not exist, or you cannot see it.",
  409: "This conflicts with the current state.",
  413: "That is too large.",
  422: "The request was refused.",
  429: "Too many requests.",
  500: "Something went wrong on our side.",
  503: "The service is temporarily unavailable.",
};

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly serverMessage: string;
  readonly field?: string;
  readonly details?: Record<string, unknown>;
  readonly correlationId?: string;
  /** Seconds to wait before retrying (429), from Retry-After. */
  readonly retryAfter?: number;

  constructor(init: {
    status: number;
    code: string;
    message?: string;
    field?: string;
    details?: Record<string, unknown>;
    correlationId?: string;
    retryAfter?: number;
  }) {
    super(init.message || init.code);
    this.name = "ApiError";
    this.status = init.status;
    this.code = init.code;
    this.serverMessage = init.message ?? "";
    this.field = init.field;
    this.details = init.details;
    this.correlationId = init.correlationId;
    this.retryAfter = init.retryAfter;
  }

  /** The sentence for people. */
  get human(): string {
    return humanMessage(this.code, this.status);
  }
}

export function humanMessage(code: string, status: number): string {
  return ERROR_MESSAGES[code] ?? STATUS_FALLBACK[status] ?? `The request failed (${status}).`;
}

function isErrorResponse(v: unknown): v is { error: ErrorBody } {
  if (typeof v !== "object" || v === null || !("error" in v)) return false;
  const e = (v as { error: unknown }).error;
  return typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string";
}

/** Builds an ApiError from a failed response and its parsed body (if any). */
export function toApiError(response: Response, body: unknown): ApiError {
  const retry = Number(response.headers.get("Retry-After") ?? "");
  const retryAfter = response.status === 429 ? (Number.isFinite(retry) && retry > 0 ? retry : 1) : undefined;
  const correlationId = response.headers.get("X-Correlation-ID") ?? undefined;
  if (isErrorResponse(body)) {
    const e = body.error;
    return new ApiError({
      status: response.status,
      code: e.code,
      message: e.message,
      field: e.field,
      details: e.details,
      correlationId: e.correlation_id || correlationId,
      retryAfter,
    });
  }
  const code =
    response.status === 429
      ? "rate_limited"
      : response.status >= 500
        ? "service_unavailable"
        : `http_${response.status}`;
  return new ApiError({ status: response.status, code, correlationId, retryAfter });
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** Bytes for people: 1.5 GiB, 12 KiB, 900 B. */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/**
 * The sentence for an error with what its details add: the quota's used and
 * limit for storage_quota_exceeded.
 */
export function detailedMessage(e: unknown): string | undefined {
  if (!isApiError(e)) return undefined;
  const d = e.details ?? {};
  const num = (k: string) => (typeof d[k] === "number" ? (d[k] as number) : undefined);
  if (e.code === "storage_quota_exceeded") {
    const used = num("used_bytes");
    const limit = num("limit_bytes");
    const reserved = num("reserved_bytes") ?? 0;
    const requested = num("requested_bytes");
    if (used !== undefined && limit !== undefined) {
      return (
        `${e.human} ${bytes(used)} of ${bytes(limit)} used` +
        (reserved > 0 ? ` (${bytes(reserved)} in uploads under way)` : "") +
        (requested !== undefined ? `; this file needs ${bytes(requested)}.` : ".")
      );
    }
  }
  return e.human;
}

/** The message for a field of a form, when the error names it. */
export function fieldError(e: unknown, field: string): string | undefined {
  if (!isApiError(e) || e.field !== field) return undefined;
  return e.serverMessage || e.human;
}
