// Fields the machine-access forms share: when a credential expires, and
// (API keys) which scopes it holds.
import { useId } from "react";
import type { CredentialScope } from "../api/types";
import { Field } from "../components/Controls";
import { SCOPES, SCOPE_TEXT, dayInput, scopesInOrder, type Expiry } from "./credentials";

/** A scope list as the tables show it: the scopes' names, in the form's order. */
export function ScopeList({ scopes }: { scopes: readonly CredentialScope[] }) {
  return (
    <ul className="plain">
      {scopesInOrder(scopes).map((s) => (
        <li key={s}>
          <code>{s}</code>
        </li>
      ))}
    </ul>
  );
}

/** A checkbox per scope with what it allows; the API's complaint about them under the group. */
export function ScopeChoices({
  scopes,
  onScopes,
  error,
}: {
  scopes: CredentialScope[];
  onScopes: (s: CredentialScope[]) => void;
  error: string | undefined;
}) {
  const id = useId();
  const toggle = (s: CredentialScope, on: boolean) =>
    onScopes(on ? [...scopes.filter((x) => x !== s), s] : scopes.filter((x) => x !== s));
  return (
    <fieldset
      className={error ? "choices invalid" : "choices"}
      aria-describedby={error ? `${id}-scopes-err` : undefined}
    >
      <legend>Scopes</legend>
      {SCOPES.map((s) => (
        <label key={s} className="check">
          <input type="checkbox" checked={scopes.includes(s)} onChange={(e) => toggle(s, e.target.checked)} />
          <span>
            <strong>{SCOPE_TEXT[s].title}</strong> <code className="muted">{s}</code>
            <span className="muted"> — {SCOPE_TEXT[s].what}</span>
          </span>
        </label>
      ))}
      {error && (
        <span id={`${id}-scopes-err`} className="inline-error" role="alert">
          {error}
        </span>
      )}
    </fieldset>
  );
}

/**
 * When a new credential expires: a choice of lifetimes, and a day field
 * when "on a day" is chosen. The API's complaint sits under the day field
 * when it is shown, else under the choice.
 */
export function ExpiryField({
  expiry,
  onExpiry,
  choices,
  maxDays,
  now,
  error,
}: {
  expiry: Expiry;
  onExpiry: (e: Expiry) => void;
  choices: { value: string; label: string }[];
  /** The furthest day offered, in days from today. */
  maxDays: number;
  now: number;
  error: string | undefined;
}) {
  const onDay = expiry.choice === "date";
  return (
    <>
      <Field label="Expires" error={onDay ? undefined : error}>
        {(f) => (
          <select
            {...f}
            value={expiry.choice}
            onChange={(e) => onExpiry({ ...expiry, choice: e.target.value })}
          >
            {choices.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      {onDay && (
        <Field label="Expiry day" hint="It stops working at the end of this day (your time)." error={error}>
          {(f) => (
            <input
              {...f}
              type="date"
              value={expiry.date}
              min={dayInput(now)}
              max={dayInput(now + maxDays * 24 * 3600 * 1000)}
              onChange={(e) => onExpiry({ ...expiry, date: e.target.value })}
            />
          )}
        </Field>
      )}
    </>
  );
}
