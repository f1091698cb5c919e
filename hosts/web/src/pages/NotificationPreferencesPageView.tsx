import { Link } from "react-router";
import type { NotificationKind, NotificationPreferences } from "../api/types";
import { ActionButton } from "../components/Controls";
import { ActionError, StateView, type Loadable } from "../components/States";
import { usePageHeading } from "../components/hooks";

/**
 * Every kind, in the order a user meets them, with the title its
 * notification carries and when it is sent. A Record over the contract's
 * enum: a kind added to the API fails the type check until it is named here.
 */
export const KIND_TEXT: Record<NotificationKind, { title: string; when: string }> = {
  allocation_active: { title: "Your node is ready", when: "an allocation of yours becomes active" },
  allocation_failed: {
    title: "Your node could not be provisioned",
    when: "an allocation of yours fails before it is active",
  },
  allocation_released: { title: "Your node was released", when: "an allocation of yours is released" },
  allocation_release_failed: {
    title: "Releasing your node failed",
    when: "an allocation of yours could not be released",
  },
  payment_credited: { title: "Payment received", when: "a payment reaches your organisation's balance" },
  low_balance: { title: "Your balance is low", when: "the balance falls below its warning threshold" },
  auto_release_pending: {
    title: "Your nodes will be released soon",
    when: "the balance will run out within minutes at the current rate",
  },
  balance_depleted: {
    title: "Your balance is used up: nodes released",
    when: "the balance ran out and running nodes are being released",
  },
  webhook_endpoint_disabled: {
    title: "A webhook endpoint was disabled",
    when: "a project's webhook endpoint kept failing (project and organisation admins)",
  },
};
const KINDS = Object.keys(KIND_TEXT) as NotificationKind[];

export interface NotificationPreferencesPageViewProps {
  /** The saved preferences: email on or off per kind, a kind missing from it on. */
  preferences: Loadable<NotificationPreferences>;
  /** The choices being edited (undefined until the saved ones have loaded). */
  draft: Record<string, boolean> | undefined;
  onToggle: (kind: NotificationKind, on: boolean) => void;
  onSave: () => void;
  saving: boolean;
  saveError: unknown;
  dirty: boolean;
}

export function NotificationPreferencesPageView(p: NotificationPreferencesPageViewProps) {
  const h = usePageHeading("Email notifications");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Email notifications
      </h1>
      <p className="muted">
        Choose which notifications also come to you by email. Every notification still reaches your{" "}
        <Link to="/notifications">inbox</Link>; some only go to the people they concern. To have a project's
        events sent to your own systems, give it <Link to="/settings/webhooks">webhooks</Link>.
      </p>
      <StateView state={p.preferences} what="your email preferences">
        {() => (
          <form
            aria-label="Email notifications"
            className="card"
            onSubmit={(e) => {
              e.preventDefault();
              p.onSave();
            }}
          >
            {KINDS.map((k) => (
              <label
                key={k}
                className="row"
                style={{ alignItems: "flex-start", flexWrap: "nowrap", marginBottom: "var(--space-3)" }}
              >
                <input
                  type="checkbox"
                  // Level with the title's first line (inputs get a text field's height).
                  style={{ minHeight: 0, marginTop: "0.3em" }}
                  checked={p.draft?.[k] ?? true}
                  onChange={(e) => p.onToggle(k, e.target.checked)}
                />
                <span>
                  <strong>{KIND_TEXT[k].title}</strong>
                  <span className="muted"> — when {KIND_TEXT[k].when}</span>
                </span>
              </label>
            ))}
            <ActionError error={p.saveError} />
            <div>
              <ActionButton type="submit" className="primary" pending={p.saving} disabled={!p.dirty}>
                Save
              </ActionButton>
            </div>
          </form>
        )}
      </StateView>
    </section>
  );
}
