import { Link } from "react-router";
import { isApiError } from "../api/errors";
import type { CreatedWebhookEndpoint, WebhookEndpoint } from "../api/types";
import { ActionButton, StateBadge } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable } from "../components/Table";
import { dateTime } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { ENDPOINT_FIELDS, EndpointFields, SecretDialog } from "./WebhookFields";
import { inOrder, statusDetail, type EndpointDraft } from "./webhooks";

export interface WebhooksPageViewProps {
  projectName: string;
  endpoints: Loadable<WebhookEndpoint[]>;
  draft: EndpointDraft;
  onDraft: (d: EndpointDraft) => void;
  onCreate: () => void;
  creating: boolean;
  createError: unknown;
  createCooldown: number;
  /** The endpoint just registered, with its secret (shown this once). */
  created?: CreatedWebhookEndpoint;
  onCloseCreated: () => void;
}

export function WebhooksPageView(p: WebhooksPageViewProps) {
  const h = usePageHeading("Webhooks");
  const generic =
    isApiError(p.createError) && ENDPOINT_FIELDS.includes(p.createError.field ?? "")
      ? undefined
      : p.createError;
  return (
    <section>
      <p>
        <Link to="/settings">← Settings</Link>
      </p>
      <h1 ref={h} tabIndex={-1}>
        Webhooks
      </h1>
      <p className="muted">
        Events of the project <strong>{p.projectName}</strong> are sent to your own HTTPS endpoints as they
        happen: a POST each, signed per the Standard Webhooks spec (<code>webhook-id</code>,{" "}
        <code>webhook-timestamp</code>, <code>webhook-signature</code>). A failed delivery is retried for
        about 24 hours; an endpoint that fails all that time is disabled and the project's admins are told.
        Only project admins see and manage webhooks.
      </p>
      <StateView state={p.endpoints} what="this project's webhooks">
        {(rows) => (
          <>
            {rows.length === 0 ? (
              <Empty title="No webhook endpoints yet">
                <p>Register one below to have this project's events sent to it.</p>
              </Empty>
            ) : (
              <DataTable
                caption={`Webhook endpoints of ${p.projectName}`}
                rows={rows}
                rowKey={(e) => e.id}
                columns={[
                  {
                    header: "Endpoint",
                    cell: (e) => (
                      <div className="url-cell">
                        <Link to={`/settings/webhooks/${e.id}`} aria-label={`Endpoint ${e.url}`}>
                          {e.url}
                        </Link>
                        {e.description && <div className="muted">{e.description}</div>}
                      </div>
                    ),
                  },
                  {
                    header: "Event types",
                    cell: (e) => (
                      <ul className="plain">
                        {inOrder(e.event_types).map((t) => (
                          <li key={t}>
                            <code>{t}</code>
                          </li>
                        ))}
                      </ul>
                    ),
                  },
                  {
                    header: "Status",
                    cell: (e) => (
                      <>
                        <StateBadge state={e.status} />
                        {statusDetail(e) && <div className="muted">{statusDetail(e)}</div>}
                      </>
                    ),
                  },
                  { header: "Created", cell: (e) => dateTime(e.created_at) },
                ]}
              />
            )}
            <h2>Register an endpoint</h2>
            <form
              aria-label="Register an endpoint"
              className="card"
              onSubmit={(e) => {
                e.preventDefault();
                p.onCreate();
              }}
            >
              <EndpointFields draft={p.draft} onDraft={p.onDraft} error={p.createError} />
              <ActionError error={generic} />
              <ActionButton
                type="submit"
                className="primary"
                pending={p.creating}
                cooldown={p.createCooldown}
              >
                Register endpoint
              </ActionButton>
            </form>
          </>
        )}
      </StateView>
      <SecretDialog
        secret={p.created?.secret}
        title="Endpoint registered: copy its signing secret"
        onClose={p.onCloseCreated}
      >
        <p>
          Deliveries to <span className="url">{p.created?.endpoint.url}</span> are signed with this secret:
          your receiver verifies each one's <code>webhook-signature</code> with it.
        </p>
      </SecretDialog>
    </section>
  );
}
