// What the webhook screens say about endpoints, deliveries and event types,
// and the requests their forms make (kept apart from the views to be tested).
import type {
  CreateWebhookEndpointRequest,
  UpdateWebhookEndpointRequest,
  WebhookAttempt,
  WebhookDelivery,
  WebhookDeliveryStatus,
  WebhookEndpoint,
  WebhookEventType,
} from "../api/types";
import { dateTime } from "../components/format";

/**
 * Every event type an endpoint may subscribe to, in the order the form lists
 * them, with what it is called and when it is sent. A Record over the
 * contract's enum: a type added to the API fails the type check until it is
 * named here.
 */
export const EVENT_TEXT: Record<WebhookEventType, { title: string; when: string }> = {
  "provisioning.allocation_active": {
    title: "Node ready",
    when: "an allocation of the project becomes active",
  },
  "provisioning.allocation_failed": {
    title: "Provisioning failed",
    when: "an allocation of the project fails before it is active",
  },
  "provisioning.allocation_released": {
    title: "Node released",
    when: "an allocation of the project is released",
  },
  "provisioning.allocation_release_failed": {
    title: "Release failed",
    when: "an allocation of the project could not be released",
  },
  "payments.balance_credited": {
    title: "Payment received",
    when: "a payment reaches the organisation's balance",
  },
  "billing.low_balance_warning": {
    title: "Low balance",
    when: "the organisation's balance falls below its warning threshold",
  },
  "billing.auto_release_pending": {
    title: "Nodes about to be released",
    when: "the balance will run out within minutes at the current rate",
  },
  "billing.balance_depleted": {
    title: "Balance used up",
    when: "the balance ran out and running nodes are being released",
  },
};
export const EVENT_TYPES = Object.keys(EVENT_TEXT) as WebhookEventType[];

/** What the register and edit forms hold. */
export interface EndpointDraft {
  url: string;
  description: string;
  event_types: WebhookEventType[];
}

export function emptyDraft(): EndpointDraft {
  return { url: "", description: "", event_types: [] };
}

export function draftOf(e: WebhookEndpoint): EndpointDraft {
  return { url: e.url, description: e.description, event_types: [...e.event_types] };
}

/** Event types in the form's order, each once. */
export function inOrder(ts: readonly WebhookEventType[]): WebhookEventType[] {
  return EVENT_TYPES.filter((t) => ts.includes(t));
}

/** The register request for a draft (spaces around the URL and description dropped). */
export function createBody(d: EndpointDraft): CreateWebhookEndpointRequest {
  const description = d.description.trim();
  return {
    url: d.url.trim(),
    ...(description ? { description } : {}),
    event_types: inOrder(d.event_types),
  };
}

/**
 * The PATCH for an edit: only what differs from the endpoint (event types
 * compared as a set), or undefined when nothing does.
 */
export function endpointChanges(
  e: WebhookEndpoint,
  d: EndpointDraft,
): UpdateWebhookEndpointRequest | undefined {
  const out: UpdateWebhookEndpointRequest = {};
  const url = d.url.trim();
  const description = d.description.trim();
  if (url !== e.url) out.url = url;
  if (description !== e.description) out.description = description;
  const now = inOrder(d.event_types);
  const was = inOrder(e.event_types);
  if (now.join() !== was.join()) out.event_types = now;
  return Object.keys(out).length ? out : undefined;
}

/**
 * Why an endpoint is disabled, or that it is failing while enabled (its
 * badge says enabled or disabled); undefined for an enabled endpoint whose
 * last attempt succeeded.
 */
export function statusDetail(e: WebhookEndpoint): string | undefined {
  if (e.status === "enabled") {
    return e.failing_since
      ? `failing since ${dateTime(e.failing_since)}: disabled after 24 hours without a success`
      : undefined;
  }
  switch (e.disabled_reason) {
    case "failing":
      return (
        "automatically: every delivery failed for 24 hours" +
        (e.failing_since ? ` (since ${dateTime(e.failing_since)})` : "")
      );
    case "manual":
    case undefined:
    case "":
      return "by a project admin";
    default:
      return e.disabled_reason;
  }
}

/**
 * One attempt's outcome as the log shows it: the response code, or that no
 * response came and why; the sender's error only when it says more than the
 * code ("the endpoint answered 503").
 */
export function attemptOutcome(a: Pick<WebhookAttempt, "status_code" | "error">): string {
  if (a.status_code === 0) return a.error ? `no response: ${a.error}` : "no response";
  const error = a.error.trim();
  if (!error || error === `the endpoint answered ${a.status_code}`) return String(a.status_code);
  return `${a.status_code}: ${error}`;
}

/** The delivery log's status filter (a Record over the contract's enum, as EVENT_TEXT). */
export const DELIVERY_STATUS_TEXT: Record<WebhookDeliveryStatus, string> = {
  pending: "Pending",
  succeeded: "Succeeded",
  failed: "Failed",
};
export const DELIVERY_STATUSES = Object.keys(DELIVERY_STATUS_TEXT) as WebhookDeliveryStatus[];

/**
 * What a delivery's status leaves unsaid: when a pending one is tried next,
 * and why a failed one failed when its attempts do not say (deliveries
 * cancelled because the endpoint was disabled have no failed attempt of
 * their own).
 */
export function deliveryNote(
  d: Pick<WebhookDelivery, "status" | "next_attempt_at" | "last_error" | "log">,
): string | undefined {
  if (d.status === "pending") return `next attempt ${dateTime(d.next_attempt_at)}`;
  if (d.status === "failed" && d.last_error && d.last_error !== d.log[d.log.length - 1]?.error) {
    return d.last_error;
  }
  return undefined;
}

/**
 * An attempt's time beside its delivery's: the time of day when it is the
 * delivery's day (the first retries come seconds apart), else date and time.
 */
export function attemptTime(at: string, createdAt: string): string {
  const a = new Date(at);
  if (a.toDateString() === new Date(createdAt).toDateString()) {
    return a.toLocaleTimeString(undefined, { timeStyle: "medium" });
  }
  return dateTime(at);
}

/** When the secret a rotation replaced stops signing (24 hours after it). */
export function previousSecretUntil(rotatedAt: number): string {
  return new Date(rotatedAt + 24 * 3600 * 1000).toISOString();
}
