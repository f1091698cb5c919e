import { Link } from "react-router";
import { isApiError } from "../api/errors";
import type { WebhookDeliveryPage, WebhookDeliveryStatus, WebhookEndpoint } from "../api/types";
import { ActionButton, ConfirmDialog, FormDialog, StateBadge } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable, type Pager } from "../components/Table";
import { dateTime } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { ENDPOINT_FIELDS, EndpointFields, SecretDialog } from "./WebhookFields";
import {
  DELIVERY_STATUSES,
  DELIVERY_STATUS_TEXT,
  EVENT_TEXT,
  attemptOutcome,
  attemptTime,
  deliveryNote,
  inOrder,
  statusDetail,
  type EndpointDraft,
} from "./webhooks";

export interface WebhookPageViewProps {
  endpoint: Loadable<WebhookEndpoint>;
  draft: EndpointDraft;
  onDraft: (d: EndpointDraft) => void;
  /** The edit dialog opened: the draft starts from the endpoint as it is. */
  onEditOpen: () => void;
  onEdit: () => Promise<unknown>;
  editing: boolean;
  editError: unknown;
  editCooldown: number;
  onEnable: (on: boolean) => Promise<unknown>;
  toggling: boolean;
  toggleError: unknown;
  onRotateOpen: () => void;
  onRotate: () => Promise<unknown>;
  rotating: boolean;
  rotateError: unknown;
  /** A secret just made by a rotation (shown this once), and until when the one it replaced still signs. */
  secret?: { value: string; previousUntil: string };
  onCloseSecret: () => void;
  onDelete: () => Promise<unknown>;
  deleting: boolean;
  deleteError: unknown;
  deliveries: Loadable<WebhookDeliveryPage>;
  status: WebhookDeliveryStatus | undefined;
  onStatus: (s: WebhookDeliveryStatus | undefined) => void;
  pager: Pager;
}

export function WebhookPageView(p: WebhookPageViewProps) {
  const h = usePageHeading(p.endpoint.status === "success" ? p.endpoint.data.url : "Webhook endpoint");
  const editGeneric =
    isApiError(p.editError) && ENDPOINT_FIELDS.includes(p.editError.field ?? "") ? undefined : p.editError;
  return (
    <section>
      <p>
        <Link to="/settings/webhooks">← Webhooks</Link>
      </p>
      <StateView state={p.endpoint} what="the webhook endpoint">
        {(e) => {
          const enabled = e.status === "enabled";
          const detail = statusDetail(e);
          return (
            <>
              <h1 ref={h} tabIndex={-1} className="entry-name">
                {e.url}
              </h1>
              {!enabled && (
                <div className="banner warning" role="status">
                  This endpoint is disabled{detail ? ` ${detail}` : ""}. It gets no events until it is enabled
                  again.
                </div>
              )}
              <div className="card">
                <dl className="kv">
                  <dt>Description</dt>
                  <dd>{e.description || "—"}</dd>
                  <dt>Event types</dt>
                  <dd>
                    <ul className="plain">
                      {inOrder(e.event_types).map((t) => (
                        <li key={t}>
                          {EVENT_TEXT[t].title} <code className="muted">{t}</code>
                        </li>
                      ))}
                    </ul>
                  </dd>
                  <dt>Status</dt>
                  <dd data-testid="webhook-status">
                    <StateBadge state={e.status} />
                    {detail && <span className="muted"> {detail}</span>}
                  </dd>
                  <dt>Created</dt>
                  <dd>{dateTime(e.created_at)}</dd>
                  <dt>Changed</dt>
                  <dd>{dateTime(e.updated_at)}</dd>
                  <dt>Endpoint id</dt>
                  <dd className="mono">{e.id}</dd>
                </dl>
              </div>
              <div className="toolbar" style={{ marginTop: "var(--space-3)" }}>
                <FormDialog
                  trigger={<button type="button">Edit</button>}
                  title="Edit the endpoint"
                  submitLabel="Save"
                  onOpenChange={(open) => open && p.onEditOpen()}
                  onSubmit={p.onEdit}
                  pending={p.editing}
                  cooldown={p.editCooldown}
                >
                  <EndpointFields draft={p.draft} onDraft={p.onDraft} error={p.editError} />
                  <ActionError error={editGeneric} />
                </FormDialog>
                {enabled ? (
                  <ConfirmDialog
                    trigger={<button type="button">Disable</button>}
                    title="Disable this endpoint?"
                    description={
                      <p>
                        It gets no events while disabled, and deliveries waiting for a retry are cancelled
                        (they show as failed). Enable it again at any time.
                      </p>
                    }
                    confirmLabel="Disable endpoint"
                    onConfirm={() => p.onEnable(false)}
                    pending={p.toggling}
                    error={p.toggleError}
                  />
                ) : (
                  <ActionButton
                    className="primary"
                    pending={p.toggling}
                    // A failure is shown under the actions (toggleError).
                    onClick={() => void p.onEnable(true).catch(() => undefined)}
                  >
                    Enable
                  </ActionButton>
                )}
                <FormDialog
                  trigger={<button type="button">Rotate secret</button>}
                  title="Rotate the signing secret?"
                  description={
                    <p>
                      A new secret is made and shown once. The current one keeps signing deliveries beside it
                      for 24 hours, so your receiver can switch without missing any.
                    </p>
                  }
                  submitLabel="Rotate secret"
                  onOpenChange={(open) => open && p.onRotateOpen()}
                  onSubmit={p.onRotate}
                  pending={p.rotating}
                >
                  <ActionError error={p.rotateError} />
                </FormDialog>
                <ConfirmDialog
                  trigger={
                    <button type="button" className="danger">
                      Delete
                    </button>
                  }
                  title="Delete this endpoint?"
                  description={
                    <p>
                      Deliveries to <span className="url">{e.url}</span> stop and its delivery log is deleted.
                      This cannot be undone.
                    </p>
                  }
                  confirmLabel="Delete endpoint"
                  onConfirm={p.onDelete}
                  pending={p.deleting}
                  error={p.deleteError}
                />
              </div>
              {!enabled && <ActionError error={p.toggleError} />}

              <h2>Deliveries</h2>
              <p className="muted">
                Newest first, each with its attempts. A failed attempt is tried again after 5 s, 30 s, 2 min,
                10 min and on for about 24 hours; any 2xx answer is a success.
              </p>
              <div className="toolbar">
                <label className="row" style={{ alignItems: "center" }}>
                  <span>Status</span>
                  <select
                    value={p.status ?? ""}
                    onChange={(ev) =>
                      p.onStatus((ev.target.value || undefined) as WebhookDeliveryStatus | undefined)
                    }
                  >
                    <option value="">All</option>
                    {DELIVERY_STATUSES.map((s) => (
                      <option key={s} value={s}>
                        {DELIVERY_STATUS_TEXT[s]}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
              <StateView
                state={p.deliveries}
                what="the delivery log"
                isEmpty={(d) => d.deliveries.length === 0}
                empty={
                  <Empty
                    title={
                      p.status
                        ? `No ${DELIVERY_STATUS_TEXT[p.status].toLowerCase()} deliveries`
                        : "No deliveries yet"
                    }
                  >
                    <p>Each event of the types this endpoint takes is listed here once it is sent.</p>
                  </Empty>
                }
              >
                {(d) => (
                  <DataTable
                    caption="Deliveries"
                    rows={d.deliveries}
                    rowKey={(x) => x.id}
                    pager={p.pager}
                    columns={[
                      {
                        header: "Event",
                        cell: (x) => (
                          <>
                            <code>{x.event_type}</code>
                            <div>{dateTime(x.created_at)}</div>
                            <div className="muted">
                              webhook-id <span className="mono url">{x.event_id}</span>
                            </div>
                          </>
                        ),
                      },
                      {
                        header: "Status",
                        cell: (x) => (
                          <>
                            <StateBadge state={x.status} />
                            {deliveryNote(x) && <div className="muted">{deliveryNote(x)}</div>}
                          </>
                        ),
                      },
                      {
                        header: "Attempts",
                        cell: (x) =>
                          x.log.length === 0 ? (
                            <span className="muted">{x.status === "pending" ? "none yet" : "none"}</span>
                          ) : (
                            <ol className="plain attempts">
                              {x.log.map((a) => (
                                <li key={a.attempt}>
                                  #{a.attempt} {attemptTime(a.at, x.created_at)} —{" "}
                                  <strong>{attemptOutcome(a)}</strong>
                                  <span className="muted"> · {a.duration_ms} ms</span>
                                </li>
                              ))}
                            </ol>
                          ),
                      },
                    ]}
                  />
                )}
              </StateView>
            </>
          );
        }}
      </StateView>
      <SecretDialog secret={p.secret?.value} title="New signing secret" onClose={p.onCloseSecret}>
        <p>
          The previous secret keeps signing deliveries until {dateTime(p.secret?.previousUntil)}: each
          delivery carries both signatures until then, so update your receiver before it stops.
        </p>
      </SecretDialog>
    </section>
  );
}
