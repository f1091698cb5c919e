import { Link } from "react-router";
import { fieldError, isApiError } from "../api/errors";
import type { CreatedCredential, ServiceAccount } from "../api/types";
import {
  ActionButton,
  ConfirmDialog,
  CopyButton,
  Field,
  FormDialog,
  SecretDialog,
} from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable } from "../components/Table";
import { dateTime, shortId } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { ExpiryField } from "./CredentialFields";
import {
  ROLES,
  ROLE_TEXT,
  SECRET_EXPIRY_CHOICES,
  SECRET_MAX_DAYS,
  credentialStatus,
  scopesInOrder,
  serviceTokenUsage,
  type AccountDraft,
  type Expiry,
} from "./credentials";

/** The fields the API names in its errors; any other error belongs under the form. */
export const ACCOUNT_FIELDS = ["name", "role"];

/** An action's failure with the thing it was for (shown by that thing only). */
export interface ErrorFor {
  id: string;
  error: unknown;
}

export interface ServiceAccountsPageViewProps {
  projectId: string;
  projectName: string;
  accounts: Loadable<ServiceAccount[]>;
  /** Where the API is, for the usage lines. */
  origin: string;
  now: number;
  draft: AccountDraft;
  onDraft: (d: AccountDraft) => void;
  onCreate: () => void;
  creating: boolean;
  createError: unknown;
  createCooldown: number;
  /** When the client secret being added expires (one add dialog is open at a time). */
  secretExpiry: Expiry;
  onSecretExpiry: (e: Expiry) => void;
  /** An add dialog opened (or closed): start its form afresh. */
  onSecretDialog: (open: boolean) => void;
  onAddSecret: (accountId: string) => Promise<unknown>;
  addingSecret: boolean;
  addSecretError?: ErrorFor;
  /** The client secret just added, with its account (shown this once). */
  created?: { account: ServiceAccount; credential: CreatedCredential };
  onCloseCreated: () => void;
  onRevokeSecret: (accountId: string, credentialId: string) => Promise<unknown>;
  revokingSecret: boolean;
  /** By credential id. */
  revokeSecretError?: ErrorFor;
  onDisable: (accountId: string) => Promise<unknown>;
  disabling: boolean;
  disableError?: ErrorFor;
}

export function ServiceAccountsPageView(p: ServiceAccountsPageViewProps) {
  const h = usePageHeading("Service accounts");
  const generic =
    isApiError(p.createError) && ACCOUNT_FIELDS.includes(p.createError.field ?? "")
      ? undefined
      : p.createError;
  const usage = p.created && serviceTokenUsage(p.origin, p.created.credential.client_id, p.projectId);
  return (
    <section>
      <p>
        <Link to="/settings">← Settings</Link>
      </p>
      <h1 ref={h} tabIndex={-1}>
        Service accounts
      </h1>
      <p className="muted">
        Machine identities of the project <strong>{p.projectName}</strong> for CI systems, schedulers and
        agents. An account acts as itself, in this project only, with its role's scopes — never as an
        administrator. It signs in with its client id and a client secret, exchanged for an access token that
        lasts 15 minutes. Only the owners and admins of your organisation see and manage service accounts; for
        your own scripts, use an <Link to="/settings/api-keys">API key</Link>.
      </p>
      <StateView state={p.accounts} what="this project's service accounts">
        {(rows) => (
          <>
            {rows.length === 0 ? (
              <Empty title="No service accounts yet">
                <p>Create one below, then add a client secret for the machine that will use it.</p>
              </Empty>
            ) : (
              <ul className="plain accounts">
                {rows.map((a) => (
                  <li key={a.id}>
                    <Account account={a} {...p} />
                  </li>
                ))}
              </ul>
            )}
            <h2>Create a service account</h2>
            <form
              aria-label="Create a service account"
              className="card"
              onSubmit={(e) => {
                e.preventDefault();
                p.onCreate();
              }}
            >
              <Field
                label="Name"
                hint="What uses it: a CI pipeline, a scheduler. Unique in the project."
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
                label="Role in the project"
                hint={`${ROLE_TEXT[p.draft.role].title}: ${ROLE_TEXT[p.draft.role].what}.`}
                error={fieldError(p.createError, "role")}
              >
                {(f) => (
                  <select
                    {...f}
                    value={p.draft.role}
                    onChange={(e) => p.onDraft({ ...p.draft, role: e.target.value as AccountDraft["role"] })}
                  >
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {ROLE_TEXT[r].title}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <ActionError error={generic} />
              <ActionButton
                type="submit"
                className="primary"
                pending={p.creating}
                cooldown={p.createCooldown}
              >
                Create account
              </ActionButton>
            </form>
          </>
        )}
      </StateView>
      <SecretDialog
        secret={p.created?.credential.client_secret}
        title="Client secret added: copy it now"
        ifLost="revoke it and add another"
        copyLabel="Copy secret"
        testId="client-secret"
        onClose={p.onCloseCreated}
        howTo={
          usage && (
            <div data-testid="service-token-usage">
              <h3>Use it</h3>
              <p>
                Exchange the client id and the secret (here from <code>GPUAAS_CLIENT_SECRET</code>) for an
                access token at <code>POST /api/v1/auth/service-token</code>. It lasts 15 minutes; there is no
                refresh token: ask again.
              </p>
              <pre className="secret">{usage.exchange}</pre>
              <p>
                Send the token as <code>Authorization: Bearer</code>, naming the project in{" "}
                <code>X-Project-ID</code>:
              </p>
              <pre className="secret">{usage.call}</pre>
            </div>
          )
        }
      >
        {p.created && (
          <>
            <p>
              For <strong>{p.created.account.name}</strong>. Its client id (not secret):
            </p>
            <pre className="secret" data-testid="client-id">
              {p.created.credential.client_id}
            </pre>
            <p>
              <CopyButton text={p.created.credential.client_id} label="Copy client id" />
            </p>
            <p>The client secret:</p>
          </>
        )}
      </SecretDialog>
    </section>
  );
}

/** One account: what it is, its client secrets, and what can be done with them. */
function Account({ account: a, ...p }: { account: ServiceAccount } & ServiceAccountsPageViewProps) {
  const headingId = `account-${a.id}`;
  const addError = p.addSecretError?.id === a.id ? p.addSecretError.error : undefined;
  const addGeneric = isApiError(addError) && addError.field === "expires_at" ? undefined : addError;
  return (
    <article className="card" aria-labelledby={headingId}>
      <h2 id={headingId} className="account-name">
        {a.name}
      </h2>
      <dl className="kv">
        <dt>Client id</dt>
        <dd className="mono">{a.client_id}</dd>
        <dt>Role</dt>
        <dd>
          {ROLE_TEXT[a.role].title}{" "}
          <span className="muted">
            (
            {scopesInOrder(a.scopes).map((s, i) => (
              <span key={s}>
                {i > 0 && ", "}
                <code>{s}</code>
              </span>
            ))}
            )
          </span>
        </dd>
        <dt>Created</dt>
        <dd>{dateTime(a.created_at)}</dd>
      </dl>
      <h3>Client secrets</h3>
      {a.credentials.length === 0 ? (
        <p className="muted">No client secrets yet: add one to use the account.</p>
      ) : (
        <DataTable
          caption={`Client secrets of ${a.name}`}
          rows={a.credentials}
          rowKey={(c) => c.id}
          columns={[
            { header: "Secret", cell: (c) => <span className="mono">{c.hint}</span> },
            { header: "Id", cell: (c) => <span className="mono">{shortId(c.id)}</span> },
            { header: "Created", cell: (c) => dateTime(c.created_at) },
            { header: "Last used", cell: (c) => (c.last_used_at ? dateTime(c.last_used_at) : "never") },
            { header: "Status", cell: (c) => credentialStatus(c, p.now).text },
            {
              header: "Action",
              cell: (c) =>
                credentialStatus(c, p.now).active ? (
                  <ConfirmDialog
                    trigger={
                      <button type="button" aria-label={`Revoke ${c.hint} of ${a.name}`}>
                        Revoke
                      </button>
                    }
                    title={`Revoke the secret ${c.hint}?`}
                    description={
                      <p>
                        The token route refuses it at once, and the tokens made with it stop working within a
                        second: whatever still uses it loses access.
                      </p>
                    }
                    confirmLabel="Revoke secret"
                    onConfirm={() => p.onRevokeSecret(a.id, c.id)}
                    pending={p.revokingSecret}
                    error={p.revokeSecretError?.id === c.id ? p.revokeSecretError.error : undefined}
                  />
                ) : (
                  "—"
                ),
            },
          ]}
        />
      )}
      <div className="row account-actions">
        <FormDialog
          trigger={
            <button type="button" aria-label={`Add a client secret to ${a.name}`}>
              Add client secret
            </button>
          }
          title={`Add a client secret to ${a.name}`}
          description={
            <p>
              An account has at most two active secrets, so one can replace the other: add the new one, deploy
              it, then revoke the old one.
            </p>
          }
          submitLabel="Add secret"
          onSubmit={() => p.onAddSecret(a.id)}
          onOpenChange={p.onSecretDialog}
          pending={p.addingSecret}
        >
          <ExpiryField
            expiry={p.secretExpiry}
            onExpiry={p.onSecretExpiry}
            choices={SECRET_EXPIRY_CHOICES}
            maxDays={SECRET_MAX_DAYS}
            now={p.now}
            error={fieldError(addError, "expires_at")}
          />
          <ActionError error={addGeneric} />
        </FormDialog>
        <ConfirmDialog
          trigger={
            <button type="button" aria-label={`Disable ${a.name}`}>
              Disable
            </button>
          }
          title={`Disable ${a.name}?`}
          description={
            <p>
              Its client secrets are revoked and its tokens stop working within a second. It cannot be enabled
              again: create another account to give access again.
            </p>
          }
          confirmLabel="Disable account"
          onConfirm={() => p.onDisable(a.id)}
          pending={p.disabling}
          error={p.disableError?.id === a.id ? p.disableError.error : undefined}
        />
      </div>
    </article>
  );
}
