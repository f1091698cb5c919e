import { useEffect, useRef, useState } from "react";
import { useNavigate } from "react-router";
import { completeSignIn, startSignIn } from "../api/session";
import { isApiError } from "../api/errors";

/** /auth/callback: the identity provider sends the browser here with code and state. */
export function CallbackPage() {
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(() => {
    const q = new URLSearchParams(location.search);
    if (q.get("error"))
      return q.get("error_description") || q.get("error") || "The identity provider refused the sign-in.";
    if (!q.get("code") || !q.get("state")) return "The sign-in link is incomplete.";
    return null;
  });
  const once = useRef(false);
  useEffect(() => {
    if (once.current) return; // a code works once: StrictMode must not exchange twice
    once.current = true;
    const q = new URLSearchParams(location.search);
    const code = q.get("code");
    const state = q.get("state");
    if (!code || !state || q.get("error")) return;
    completeSignIn(code, state).then(
      (to) => navigate(to, { replace: true }),
      (e: unknown) =>
        setError(isApiError(e) ? e.serverMessage || e.human : "The sign-in could not be completed."),
    );
  }, [navigate]);
  return (
    <main id="main" className="card" style={{ maxWidth: 480, margin: "10vh auto" }}>
      <h1>Signing you in</h1>
      {error ? (
        <div role="alert">
          <p>{error}</p>
          <button type="button" className="primary" onClick={() => startSignIn("/")}>
            Sign in again
          </button>
        </div>
      ) : (
        <p role="status">One moment…</p>
      )}
    </main>
  );
}
