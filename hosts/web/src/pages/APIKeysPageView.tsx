import { Link } from "react-router";
import { fieldError, isApiError } from "../api/errors";
import type { APIKey, CreatedAPIKey, Project } from "../api/types";
import { ActionButton, ConfirmDialog, Field, SecretDialog } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable } from "../components/Table";
import { dateTime, shortId } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { ExpiryField, ScopeChoices, ScopeList } from "./CredentialFields";
import {
  KEY_EXPIRY_CHOICES,
  KEY_MAX_DAYS,
  apiKeyUsage,
  expiryText,
  spendCapText,
  type KeyDraft,
} from "./credentials";

/** The fields the API names in its errors; any other error belongs under the form. */
export const KEY_FIELDS = ["name", "project_id", "scopes", "expires_at", "spend_cap_minor"];

export interface APIKeysPageViewProps {
  keys: Loadable<APIKey[]>;
  /** The user's projects: a key is for one of them. */
  projects: Project[];
  /** The ledger's currency, for the spend cap (undefined until the balance has loaded). */
  currency: string | undefined;
  /** Where the API is, for the usage lines. */
  origin: string;
  now: number;
  draft: KeyDraft;
  onDraft: (d: KeyDraft) => void;
  onCreate: () => void;
  creating: boolean;
  createError: unknown;
  createCooldown: number;
  /** The key just created, with its secret (shown this once). */
  created?: CreatedAPIKey;
  onCloseCreated: () => void;
  onRevoke: (id: string) => Promise<unknown>;
  revoking: boolean;
  /** The last revoke's failure, with the key it was for (shown in that key's dialog). */
  revokeError?: { id: string; error: unknown };
}

export function APIKeysPageView(p: APIKeysPageViewProps) {
  const h = usePageHeading("API keys");
  const projectName = (id: string) => p.projects.find((x) => x.id === id)?.name ?? shortId(id);
  const generic =
    isApiError(p.createError) && KEY_FIELDS.includes(p.createError.field ?? "") ? undefined : p.createError;
  const usage = p.created && apiKeyUsage(p.origin, p.created.api_key.project_id);
  const cur = p.currency?.toUpperCase();
  return (
    <section>
      <p>
        <Link to="/settings">← Settings</Link>
      </p>
      <h1 ref={h} tabIndex={-1}>
        API keys
      </h1>
      <p className="muted">
        Personal keys for the <code>gpuaas</code> CLI, scripts and notebooks, sent as{" "}
        <code>Authorization: Bearer gpa_…</code>. A key acts as you in one project, with the scopes you give
        it and your role there — never as an administrator of your organisation or the platform, and it cannot
        manage keys. A revoked key stops working within a second. For a machine a team shares, the owners and
        admins of your organisation can create a <Link to="/settings/service-accounts">service account</Link>{" "}
        instead.
      </p>
      <StateView state={p.keys} what="your API keys">
        {(rows) => (
          <>
            {rows.length === 0 ? (
              <Empty title="No API keys yet">
                <p>Create one below to use the API from the CLI or a script.</p>
              </Empty>
            ) : (
              <DataTable
                caption="Your API keys"
                rows={rows}
                rowKey={(k) => k.id}
                columns={[
                  {
                    header: "Name",
                    cell: (k) => (
                      <>
                        {k.name}
                        <div className="muted mono">{k.prefix}…</div>
                      </>
                    ),
                  },
                  { header: "Project", cell: (k) => projectName(k.project_id) },
                  { header: "Scopes", cell: (k) => <ScopeList scopes={k.scopes} /> },
                  { header: "Created", cell: (k) => dateTime(k.created_at) },
                  { header: "Expires", cell: (k) => expiryText(k.expires_at, p.now) },
                  { header: "Spend cap", cell: (k) => spendCapText(k, p.currency) },
                  { header: "Last used", cell: (k) => (k.last_used_at ? dateTime(k.last_used_at) : "never") },
                  {
                    header: "Action",
                    cell: (k) => (
                      <ConfirmDialog
                        trigger={
                          <button type="button" aria-label={`Revoke ${k.name}`}>
                            Revoke
                          </button>
                        }
                        title={`Revoke ${k.name}?`}
                        description={
                          <p>
                            Whatever uses it (the CLI, a script, CI) loses access within a second. This cannot
                            be undone: create a new key to give access again.
                          </p>
                        }
                        confirmLabel="Revoke key"
                        onConfirm={() => p.onRevoke(k.id)}
                        pending={p.revoking}
                        error={p.revokeError?.id === k.id ? p.revokeError.error : undefined}
                      />
                    ),
                  },
                ]}
              />
            )}
            <h2>Create a key</h2>
            <form
              aria-label="Create an API key"
              className="card"
              onSubmit={(e) => {
                e.preventDefault();
                p.onCreate();
              }}
            >
              <Field
                label="Name"
                hint="To tell your keys apart: where it is used, say."
                error={fieldError(p.createError, "name")}
              >
                {(f) => (
                  <input
                    {...f}
                    autoComplete="off"
                    value={p.draft.name}
                    onChange={(e) => p.onDraft({ ...p.draft, name: e.target.value })}
                    maxLength={100}
                  />
                )}
              </Field>
              <Field
                label="Project"
                hint="The key works in this project only."
                error={fieldError(p.createError, "project_id")}
              >
                {(f) => (
                  <select
                    {...f}
                    value={p.draft.projectId}
                    onChange={(e) => p.onDraft({ ...p.draft, projectId: e.target.value })}
                  >
                    {p.projects.map((x) => (
                      <option key={x.id} value={x.id}>
                        {x.name}
                        {x.is_default ? " (default)" : ""}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <ScopeChoices
                scopes={p.draft.scopes}
                onScopes={(scopes) => p.onDraft({ ...p.draft, scopes })}
                error={fieldError(p.createError, "scopes")}
              />
              <ExpiryField
                expiry={p.draft.expiry}
                onExpiry={(expiry) => p.onDraft({ ...p.draft, expiry })}
                choices={KEY_EXPIRY_CHOICES}
                maxDays={KEY_MAX_DAYS}
                now={p.now}
                error={fieldError(p.createError, "expires_at")}
              />
              <Field
                label={cur ? `Daily spend cap (${cur}, optional)` : "Daily spend cap (optional)"}
                hint="The most the nodes requested with this key may cost per UTC day. Empty: no cap but the balance."
                error={fieldError(p.createError, "spend_cap_minor")}
              >
                {(f) => (
                  <input
                    {...f}
                    inputMode="decimal"
                    autoComplete="off"
                    placeholder="50.00"
                    value={p.draft.spendCap}
                    onChange={(e) => p.onDraft({ ...p.draft, spendCap: e.target.value })}
                  />
                )}
              </Field>
              <ActionError error={generic} />
              <ActionButton
                type="submit"
                className="primary"
                pending={p.creating}
                cooldown={p.createCooldown}
              >
                Create key
              </ActionButton>
            </form>
          </>
        )}
      </StateView>
      <SecretDialog
        secret={p.created?.secret}
        title="API key created: copy it now"
        ifLost="revoke it and create another"
        copyLabel="Copy key"
        testId="api-key-secret"
        onClose={p.onCloseCreated}
        howTo={
          usage && (
            <div data-testid="api-key-usage">
              <h3>Use it</h3>
              <p>
                Sign the CLI in with it (paste the key, then Enter); a script can set{" "}
                <code>GPUAAS_API_KEY</code> and <code>GPUAAS_API_URL</code> instead:
              </p>
              <pre className="secret">{usage.cli}</pre>
              <p>
                Call the API with it as a bearer token, naming its project in <code>X-Project-ID</code>:
              </p>
              <pre className="secret">{usage.curl}</pre>
            </div>
          )
        }
      >
        <p>
          <strong>{p.created?.api_key.name}</strong> works in the project{" "}
          <strong>{p.created && projectName(p.created.api_key.project_id)}</strong>. Keep it like a password.
        </p>
      </SecretDialog>
    </section>
  );
}
