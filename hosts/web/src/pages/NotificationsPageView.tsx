import { Link } from "react-router";
import type { NotificationPage } from "../api/types";
import { ActionButton } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { PagerNav, type Pager } from "../components/Table";
import { dateTime } from "../components/format";
import { usePageHeading } from "../components/hooks";

export interface NotificationsPageViewProps {
  page: Loadable<NotificationPage>;
  unreadOnly: boolean;
  onUnreadOnly: (v: boolean) => void;
  pager: Pager;
  onMarkRead: (id: string) => void;
  onMarkAll: () => void;
  marking: boolean;
  markError: unknown;
  markCooldown: number;
}

export function NotificationsPageView(p: NotificationsPageViewProps) {
  const h = usePageHeading("Inbox");
  return (
    <section>
      <div className="page-head">
        <h1 ref={h} tabIndex={-1}>
          Inbox
        </h1>
        <ActionButton
          onClick={p.onMarkAll}
          pending={p.marking}
          cooldown={p.markCooldown}
          disabled={p.page.status !== "success" || p.page.data.unread === 0}
        >
          Mark all read
        </ActionButton>
      </div>
      <p className="muted">
        What happened to your nodes and money. New ones arrive live; email follows your{" "}
        <Link to="/settings/notifications">email preferences</Link>.
      </p>
      <div className="toolbar">
        <label className="row" style={{ alignItems: "center" }}>
          <input type="checkbox" checked={p.unreadOnly} onChange={(e) => p.onUnreadOnly(e.target.checked)} />
          <span>Unread only</span>
        </label>
        {p.page.status === "success" && (
          <span className="muted" data-testid="unread-count">
            {p.page.data.unread} unread
          </span>
        )}
      </div>
      <ActionError error={p.markError} />
      <StateView
        state={p.page}
        what="your notifications"
        isEmpty={(d) => d.notifications.length === 0}
        empty={
          <Empty title={p.unreadOnly ? "Nothing unread" : "No notifications yet"}>
            <p>You are told here when a node is ready or released and when your balance runs low.</p>
          </Empty>
        }
      >
        {(d) => (
          <>
            <ul className="inbox" aria-label="Notifications">
              {d.notifications.map((n) => (
                <li key={n.id} className={n.read ? "read" : "unread"}>
                  <h2>
                    {n.read ? "" : <span className="visually-hidden">Unread: </span>}
                    {n.title}
                  </h2>
                  <p style={{ margin: "0 0 4px" }}>{n.body}</p>
                  <div className="row" style={{ alignItems: "center" }}>
                    <span className="muted">{dateTime(n.created_at)}</span>
                    {n.link && <Link to={n.link.path}>{n.link.label}</Link>}
                    {!n.read && (
                      <button
                        type="button"
                        onClick={() => p.onMarkRead(n.id)}
                        aria-label={`Mark read: ${n.title}`}
                      >
                        Mark read
                      </button>
                    )}
                  </div>
                </li>
              ))}
            </ul>
            <PagerNav pager={p.pager} label="Notification pages" />
          </>
        )}
      </StateView>
    </section>
  );
}
