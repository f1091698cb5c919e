// Pieces both webhook screens render: the endpoint's fields (register and
// edit) and the dialog that shows a signing secret its one time.
import { useId, type ReactNode } from "react";
import { fieldError } from "../api/errors";
import type { WebhookEventType } from "../api/types";
import { Field, SecretDialog as SharedSecretDialog } from "../components/Controls";
import { EVENT_TEXT, EVENT_TYPES, type EndpointDraft } from "./webhooks";

/** The fields the API names in its errors; any other error belongs under the form. */
export const ENDPOINT_FIELDS = ["url", "description", "event_types"];

export function EndpointFields({
  draft,
  onDraft,
  error,
}: {
  draft: EndpointDraft;
  onDraft: (d: EndpointDraft) => void;
  error: unknown;
}) {
  const id = useId();
  const typesError = fieldError(error, "event_types");
  const toggle = (t: WebhookEventType, on: boolean) =>
    onDraft({
      ...draft,
      event_types: on
        ? [...draft.event_types.filter((x) => x !== t), t]
        : draft.event_types.filter((x) => x !== t),
    });
  return (
    <>
      <Field
        label="Endpoint URL"
        hint="Where deliveries are POSTed: https, on a public host."
        error={fieldError(error, "url")}
      >
        {(f) => (
          <input
            {...f}
            type="url"
            inputMode="url"
            autoComplete="off"
            spellCheck={false}
            placeholder="https://hooks.example.com/gpuaas"
            value={draft.url}
            onChange={(e) => onDraft({ ...draft, url: e.target.value })}
            required
            maxLength={2048}
          />
        )}
      </Field>
      <Field label="Description (optional)" error={fieldError(error, "description")}>
        {(f) => (
          <input
            {...f}
            value={draft.description}
            onChange={(e) => onDraft({ ...draft, description: e.target.value })}
            maxLength={200}
          />
        )}
      </Field>
      <fieldset
        className={typesError ? "choices invalid" : "choices"}
        aria-describedby={typesError ? `${id}-types-err` : undefined}
      >
        <legend>Event types</legend>
        {EVENT_TYPES.map((t) => (
          <label key={t} className="check">
            <input
              type="checkbox"
              checked={draft.event_types.includes(t)}
              onChange={(e) => toggle(t, e.target.checked)}
            />
            <span>
              <strong>{EVENT_TEXT[t].title}</strong> <code className="muted">{t}</code>
              <span className="muted"> — when {EVENT_TEXT[t].when}</span>
            </span>
          </label>
        ))}
        {typesError && (
          <span id={`${id}-types-err`} className="inline-error" role="alert">
            {typesError}
          </span>
        )}
      </fieldset>
    </>
  );
}

/** A signing secret, shown this once, with a copy button (a lost one is replaced by rotating it). */
export function SecretDialog(p: {
  secret: string | undefined;
  title: string;
  onClose: () => void;
  children: ReactNode;
}) {
  return <SharedSecretDialog {...p} ifLost="rotate the secret" testId="webhook-secret" />;
}
