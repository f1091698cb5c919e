import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { isApiError } from "../api/errors";
import { newId } from "../api/client";
import type { Pager } from "./Table";

/** Seconds left until `until` (ms since epoch), ticking once a second. */
export function useCountdown(until: number | undefined): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!until || until <= Date.now()) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [until]);
  if (!until) return 0;
  return Math.max(0, Math.ceil((until - now) / 1000));
}

/**
 * A 429 disables the action until its wait (Retry-After) has passed:
 * `trip(error)` after a failure, `secondsLeft` > 0 while blocked.
 */
export function useCooldown() {
  const [until, setUntil] = useState<number | undefined>();
  const secondsLeft = useCountdown(until);
  const trip = useCallback((e: unknown) => {
    if (isApiError(e) && e.status === 429) setUntil(Date.now() + (e.retryAfter ?? 1) * 1000);
  }, []);
  return { secondsLeft, blocked: secondsLeft > 0, trip };
}

/**
 * An idempotency key that stays the same while the values stay the same, so
 * a double-click or a retry of the same request creates one thing; new values
 * (or reset() after success) get a new key.
 */
export function useIdempotencyKey(values: unknown): { key: string; reset: () => void } {
  const sig = JSON.stringify(values);
  const [gen, setGen] = useState(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const key = useMemo(() => newId(), [sig, gen]);
  const reset = useCallback(() => setGen((g) => g + 1), []);
  return { key, reset };
}

/**
 * Idempotency keys for one action on any of several things (revoke this key,
 * revoke that secret): the same key for the same thing until done(thing), so
 * a retried revoke of it is one revoke, and a new key after it succeeded.
 */
export function useIdempotencyKeys(): { keyFor: (target: string) => string; done: (target: string) => void } {
  const keys = useRef(new Map<string, string>());
  return useMemo(
    () => ({
      keyFor: (target: string) => {
        let k = keys.current.get(target);
        if (!k) {
          k = newId();
          keys.current.set(target, k);
        }
        return k;
      },
      done: (target: string) => void keys.current.delete(target),
    }),
    [],
  );
}

/**
 * A stack of cursors for "previous / next" over keyset pages. pager(next,
 * busy) is the table's Pager for the page shown, whose next_cursor is next.
 */
export function useCursorPages() {
  const [stack, setStack] = useState<(string | undefined)[]>([undefined]);
  const cursor = stack[stack.length - 1];
  const next = (c: string | undefined) => c && setStack((s) => [...s, c]);
  const prev = () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s));
  return {
    cursor,
    page: stack.length,
    next,
    prev,
    reset: () => setStack([undefined]),
    pager: (nextCursor: string | undefined, busy?: boolean): Pager => ({
      page: stack.length,
      hasPrev: stack.length > 1,
      hasNext: !!nextCursor,
      onPrev: prev,
      onNext: () => next(nextCursor),
      ...(busy === undefined ? {} : { busy }),
    }),
  };
}

/** Sets the document title and moves focus to the page heading on arrival. */
export function usePageHeading(title: string) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · GPUaaS`;
    ref.current?.focus({ preventScroll: false });
  }, [title]);
  return ref;
}

/** Re-renders once a second (for "cost so far"). */
export function useTick(ms = 1000): number {
  const [t, setT] = useState(() => Date.now());
  useEffect(() => {
    const i = setInterval(() => setT(Date.now()), ms);
    return () => clearInterval(i);
  }, [ms]);
  return t;
}
