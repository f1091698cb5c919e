// What the machine-access screens (API keys, service accounts) say about
// keys, accounts, secrets and scopes, and the requests their forms make
// (kept apart from the views to be tested).
import type {
  APIKey,
  CreateAPIKeyRequest,
  CreateCredentialRequest,
  CreateServiceAccountRequest,
  CredentialScope,
  ServiceAccountCredential,
  ServiceAccountRole,
} from "../api/types";
import { dateTime, money, toMinor } from "../components/format";

/**
 * Every scope a key may hold, in the order the form lists them, with what
 * it lets the key do (the operations whose x-scope it is, doc/api/openapi.yaml).
 * A Record over the contract's enum: a scope added to the API fails the type
 * check until it is named here.
 */
export const SCOPE_TEXT: Record<CredentialScope, { title: string; what: string }> = {
  read: {
    title: "Read",
    what: "see the project's allocations, files and members, node types and prices, your SSH keys and notifications",
  },
  allocations: {
    title: "Allocations",
    what: "request and release nodes, open their terminals, add and remove your SSH keys",
  },
  storage: {
    title: "Storage",
    what: "upload, rename and delete the project's files",
  },
  billing: {
    title: "Billing",
    what: "see the organisation's balance, ledger and usage, and start a top-up",
  },
};
export const SCOPES = Object.keys(SCOPE_TEXT) as CredentialScope[];

/** Scopes in the form's order, each once. */
export function scopesInOrder(ss: readonly CredentialScope[]): CredentialScope[] {
  return SCOPES.filter((s) => ss.includes(s));
}

/**
 * When a new credential expires, as its form holds it: never, in a number
 * of days (the select's values are "never", "date" or a count of days), or
 * at the end of a chosen day (an <input type="date"> value, yyyy-mm-dd).
 */
export interface Expiry {
  choice: string;
  date: string;
}

/** The choices an API key offers (the API takes at most a year). */
export const KEY_EXPIRY_CHOICES: { value: string; label: string }[] = [
  { value: "never", label: "Never (until revoked)" },
  { value: "7", label: "In 7 days" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In a year" },
  { value: "date", label: "On a day you choose" },
];
/** The furthest day the date field offers for an API key. */
export const KEY_MAX_DAYS = 365;

const DAY_MS = 24 * 3600 * 1000;

/** A local day as an <input type="date"> writes it: yyyy-mm-dd. */
export function dayInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * The expires_at an expiry choice asks for: none for "never", now plus the
 * days chosen, or the last moment of the chosen day (local time). A day not
 * chosen is an error for the date field; whether the time is allowed (in the
 * future, not too far) is the API's to say.
 */
export function expiresAt(e: Expiry, now: number): { at?: string } | { error: string } {
  if (e.choice === "never") return {};
  if (e.choice === "date") {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(e.date);
    if (!m) return { error: "Choose the day it expires." };
    return { at: new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59, 999).toISOString() };
  }
  const days = Number(e.choice);
  if (!Number.isInteger(days) || days <= 0) return { error: "Choose when it expires." };
  return { at: new Date(now + days * DAY_MS).toISOString() };
}

/** An expiry as a list shows it: never, its time, or that it has passed. */
export function expiryText(at: string | undefined, now: number): string {
  if (!at) return "never";
  return Date.parse(at) <= now ? `expired ${dateTime(at)}` : dateTime(at);
}

/** What the API key form holds. */
export interface KeyDraft {
  name: string;
  projectId: string;
  scopes: CredentialScope[];
  expiry: Expiry;
  /** As typed, in the ledger's currency ("" for no cap). */
  spendCap: string;
}

/** A fresh form: the active project, read-only (as `gpuaas keys create`), no expiry, no cap. */
export function emptyKeyDraft(projectId: string): KeyDraft {
  return { name: "", projectId, scopes: ["read"], expiry: { choice: "never", date: "" }, spendCap: "" };
}

/** A mistake the form catches before asking the API, named by the field the API would name. */
export interface LocalError {
  field: string;
  message: string;
}

/**
 * The create request for a draft: the name without surrounding spaces, the
 * scopes in order, expires_at and spend_cap_minor only when set (a cap of 0
 * is no cap). An expiry day not chosen or an amount that is not one is a
 * LocalError; everything else (an empty name, no scope) the API judges and
 * says why.
 */
export function createKeyBody(d: KeyDraft, now: number): { body: CreateAPIKeyRequest } | LocalError {
  const exp = expiresAt(d.expiry, now);
  if ("error" in exp) return { field: "expires_at", message: exp.error };
  const body: CreateAPIKeyRequest = {
    name: d.name.trim(),
    project_id: d.projectId,
    scopes: scopesInOrder(d.scopes),
  };
  if (exp.at) body.expires_at = exp.at;
  if (d.spendCap.trim() !== "") {
    const minor = toMinor(d.spendCap);
    if (Number.isNaN(minor)) {
      return { field: "spend_cap_minor", message: "Enter an amount such as 50 or 12.50, or leave it empty." };
    }
    if (minor > 0) body.spend_cap_minor = minor;
  }
  return { body };
}

/** A key's daily spend cap: none, or the amount a day (in the ledger's currency when it is known). */
export function spendCapText(k: Pick<APIKey, "spend_cap_minor">, currency: string | undefined): string {
  if (k.spend_cap_minor <= 0) return "none";
  const amount = currency ? money(k.spend_cap_minor, currency) : (k.spend_cap_minor / 100).toFixed(2);
  return `${amount} a day`;
}

/**
 * How to use a new key: signing the CLI in with it (it reads the key from
 * standard input, so it stays out of the shell's history), and calling the
 * API with it as a bearer token in its project (doc/cli.md,
 * doc/service-accounts.md).
 */
export function apiKeyUsage(origin: string, projectId: string): { cli: string; curl: string } {
  return {
    cli: `gpuaas login --api ${origin} --api-key-stdin`,
    curl:
      `curl -H "Authorization: Bearer $GPUAAS_API_KEY" \\\n` +
      `     -H "X-Project-ID: ${projectId}" \\\n` +
      `     ${origin}/api/v1/allocations`,
  };
}

/**
 * Every project role a service account may have, in the order the form
 * lists them, with what it lets the account do (its scopes follow from it,
 * doc/service-accounts.md). A Record over the contract's enum, as SCOPE_TEXT.
 */
export const ROLE_TEXT: Record<ServiceAccountRole, { title: string; what: string }> = {
  viewer: { title: "Viewer", what: "reads the project: its allocations, files and members (read)" },
  member: {
    title: "Member",
    what: "reads the project, requests and releases nodes, manages its files (read, allocations, storage)",
  },
  admin: {
    title: "Admin",
    what: "what a member does, and sees and tops up the organisation's billing (all four scopes)",
  },
};
export const ROLES = Object.keys(ROLE_TEXT) as ServiceAccountRole[];

/** What the create-account form holds. */
export interface AccountDraft {
  name: string;
  role: ServiceAccountRole;
}

/** A fresh form: a member, as a colleague added on the settings page. */
export function emptyAccountDraft(): AccountDraft {
  return { name: "", role: "member" };
}

/** The create request (the name without surrounding spaces; an empty one is the API's to refuse). */
export function createAccountBody(d: AccountDraft): CreateServiceAccountRequest {
  return { name: d.name.trim(), role: d.role };
}

/** The choices a client secret offers (the API takes at most two years). */
export const SECRET_EXPIRY_CHOICES: { value: string; label: string }[] = [
  { value: "never", label: "Never (until revoked)" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In a year" },
  { value: "730", label: "In two years" },
  { value: "date", label: "On a day you choose" },
];
/** The furthest day the date field offers for a client secret. */
export const SECRET_MAX_DAYS = 730;

/** The request for a new client secret: with expires_at only when it expires. */
export function createCredentialBody(e: Expiry, now: number): { body: CreateCredentialRequest } | LocalError {
  const exp = expiresAt(e, now);
  if ("error" in exp) return { field: "expires_at", message: exp.error };
  return { body: exp.at ? { expires_at: exp.at } : {} };
}

/** Whether a credential still works, and what its list row says about it. */
export function credentialStatus(
  c: Pick<ServiceAccountCredential, "expires_at" | "revoked_at">,
  now: number,
): { active: boolean; text: string } {
  if (c.revoked_at) return { active: false, text: `revoked ${dateTime(c.revoked_at)}` };
  if (c.expires_at && Date.parse(c.expires_at) <= now) {
    return { active: false, text: `expired ${dateTime(c.expires_at)}` };
  }
  return { active: true, text: c.expires_at ? `active, expires ${dateTime(c.expires_at)}` : "active" };
}

/**
 * How to use a new client secret: exchange it with the account's client id
 * for an access token (15 minutes; no refresh token: ask again), then call
 * the API with that token in the account's project (doc/service-accounts.md).
 * The secret is read from the environment (GPUAAS_CLIENT_SECRET), so it
 * stays out of the command and the shell's history.
 */
export function serviceTokenUsage(
  origin: string,
  clientId: string,
  projectId: string,
): { exchange: string; call: string } {
  return {
    exchange:
      `ACCESS_TOKEN=$(curl -s -X POST ${origin}/api/v1/auth/service-token \\\n` +
      `     -H "Content-Type: application/json" \\\n` +
      `     -d "{\\"client_id\\": \\"${clientId}\\", \\"client_secret\\": \\"$GPUAAS_CLIENT_SECRET\\"}" \\\n` +
      `     | jq -r .access_token)`,
    call:
      `curl -H "Authorization: Bearer $ACCESS_TOKEN" \\\n` +
      `     -H "X-Project-ID: ${projectId}" \\\n` +
      `     ${origin}/api/v1/allocations`,
  };
}
