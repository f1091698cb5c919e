// The shared states every screen renders through: loading, empty, error,
// restricted (403), rate-limited (429 with the wait), session expired (401).
import { useState, type ReactNode } from "react";
import { detailedMessage, isApiError, type ApiError } from "../api/errors";
import { startSignIn } from "../api/session";
import { useCountdown } from "./hooks";

export type Loadable<T> =
  | { status: "pending" }
  | { status: "error"; error: unknown; retry?: () => void }
  | { status: "success"; data: T };

/** Turns a TanStack Query result into a Loadable for a view. */
export function loadable<T>(q: {
  status: "pending" | "error" | "success";
  data: T | undefined;
  error: unknown;
  refetch: () => unknown;
}): Loadable<T> {
  if (q.status === "success" && q.data !== undefined) return { status: "success", data: q.data };
  if (q.status === "error") return { status: "error", error: q.error, retry: () => void q.refetch() };
  return { status: "pending" };
}

export function Loading({ label = "Loading" }: { label?: string }) {
  return (
    <div className="state" role="status" aria-live="polite">
      <p>{label}…</p>
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state">
      <h2>{title}</h2>
      {children}
    </div>
  );
}

export function Restricted({ what }: { what?: string }) {
  return (
    <div className="state" role="alert">
      <h2>Restricted</h2>
      <p>You do not have permission to see {what ?? "this"}. Ask an administrator of your organisation.</p>
    </div>
  );
}

export function RateLimited({ seconds, onRetry }: { seconds: number; onRetry?: () => void }) {
  // The target time is fixed when the state first renders.
  const [until] = useState(() => Date.now() + seconds * 1000);
  const left = useCountdown(until);
  return (
    <div className="state" role="alert">
      <h2>Too many requests</h2>
      <p>
        {left > 0
          ? `The platform asked us to slow down. You can try again in ${left} s.`
          : "You can try again now."}
      </p>
      {onRetry && (
        <button type="button" onClick={onRetry} disabled={left > 0}>
          {left > 0 ? `Retry in ${left} s` : "Retry"}
        </button>
      )}
    </div>
  );
}

export function SessionExpired() {
  return (
    <div className="state" role="alert">
      <h2>Your session ended</h2>
      <p>Sign in again to continue; you will come back to this page.</p>
      <button
        type="button"
        className="primary"
        onClick={() => startSignIn(location.pathname + location.search)}
      >
        Sign in again
      </button>
    </div>
  );
}

export function ErrorState({
  error,
  onRetry,
  what,
}: {
  error: unknown;
  onRetry?: () => void;
  what?: string;
}) {
  if (isApiError(error)) {
    if (error.status === 401) return <SessionExpired />;
    if (error.status === 403) return <Restricted what={what} />;
    if (error.status === 429) return <RateLimited seconds={error.retryAfter ?? 1} onRetry={onRetry} />;
  }
  const e = isApiError(error) ? error : undefined;
  return (
    <div className="state" role="alert">
      <h2>Could not load {what ?? "this page"}</h2>
      <p>{e ? e.human : "Something went wrong."}</p>
      {e?.correlationId && (
        <p className="muted">
          Correlation id: <code>{e.correlationId}</code>
        </p>
      )}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Renders a Loadable: loading, error (by kind), empty, or the content. */
export function StateView<T>({
  state,
  what,
  isEmpty,
  empty,
  children,
}: {
  state: Loadable<T>;
  what?: string;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  if (state.status === "pending") return <Loading label={`Loading ${what ?? ""}`.trim()} />;
  if (state.status === "error") return <ErrorState error={state.error} onRetry={state.retry} what={what} />;
  if (isEmpty && isEmpty(state.data)) return <>{empty ?? <Empty title="Nothing here yet" />}</>;
  return <>{children(state.data)}</>;
}

/** An action's failure, shown next to the action. */
export function ActionError({ error }: { error: unknown }) {
  if (!error) return null;
  const e: ApiError | undefined = isApiError(error) ? error : undefined;
  return (
    <p className="inline-error" role="alert">
      {e ? detailedMessage(e) : "Something went wrong."}
      {e?.serverMessage &&
      e.serverMessage !== e.human &&
      e.status !== 500 &&
      !(e.details && e.code === "storage_quota_exceeded")
        ? ` (${e.serverMessage})`
        : ""}
      {e?.status === 429 && e.retryAfter ? ` Wait ${e.retryAfter} s.` : ""}
      {e?.correlationId && e.status >= 500 ? ` Correlation id: ${e.correlationId}.` : ""}
    </p>
  );
}
