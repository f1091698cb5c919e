import { describe, expect, it, vi } from "vitest";
import { act, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { renderHook } from "@testing-library/react";
import { ApiError } from "../api/errors";
import { ErrorState, StateView, ActionError } from "./States";
import { DataTable } from "./Table";
import { useCooldown, useCursorPages, useIdempotencyKey, useIdempotencyKeys } from "./hooks";

const apiErr = (
  status: number,
  code: string,
  extra: Partial<ConstructorParameters<typeof ApiError>[0]> = {},
) => new ApiError({ status, code, message: "server text", correlationId: "corr-9", ...extra });

describe("StateView", () => {
  it("shows loading, empty and content", () => {
    const { rerender } = render(
      <StateView state={{ status: "pending" }} what="keys">
        {() => <p>content</p>}
      </StateView>,
    );
    expect(screen.getByRole("status")).toHaveProperty("textContent", "Loading keys…");
    rerender(
      <StateView
        state={{ status: "success", data: [] as number[] }}
        isEmpty={(d) => d.length === 0}
        empty={<p>none</p>}
      >
        {() => <p>content</p>}
      </StateView>,
    );
    expect(screen.getByText("none")).toBeTruthy();
    rerender(
      <StateView state={{ status: "success", data: [1] }} isEmpty={(d) => d.length === 0}>
        {(d) => <p>content {d.length}</p>}
      </StateView>,
    );
    expect(screen.getByText("content 1")).toBeTruthy();
  });

  it("an error shows the human message, the correlation id and a retry", async () => {
    const retry = vi.fn();
    render(
      <StateView state={{ status: "error", error: apiErr(500, "internal_error"), retry }} what="billing">
        {() => null}
      </StateView>,
    );
    expect(screen.getByRole("alert").textContent).toContain("Something went wrong on our side");
    expect(screen.getByText("corr-9")).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(retry).toHaveBeenCalled();
  });
});

describe("ErrorState kinds", () => {
  it("403 is restricted", () => {
    render(<ErrorState error={apiErr(403, "forbidden")} what="the audit log" />);
    expect(screen.getByRole("heading", { name: "Restricted" })).toBeTruthy();
  });
  it("401 asks to sign in again", () => {
    render(<ErrorState error={apiErr(401, "session_ended")} />);
    expect(screen.getByRole("button", { name: "Sign in again" })).toBeTruthy();
  });
  it("429 counts the wait down and disables retry until it passes", () => {
    vi.useFakeTimers();
    const retry = vi.fn();
    render(<ErrorState error={apiErr(429, "rate_limited", { retryAfter: 3 })} onRetry={retry} />);
    expect(screen.getByRole("alert").textContent).toContain("try again in 3 s");
    expect(screen.getByRole("button", { name: "Retry in 3 s" })).toHaveProperty("disabled", true);
    act(() => vi.advanceTimersByTime(3_100));
    expect(screen.getByRole("button", { name: "Retry" })).toHaveProperty("disabled", false);
    vi.useRealTimers();
  });
});

describe("ActionError", () => {
  it("names the wait of a 429 and never shows raw JSON", () => {
    render(<ActionError error={apiErr(429, "rate_limited", { retryAfter: 5 })} />);
    expect(screen.getByRole("alert").textContent).toContain("Wait 5 s");
    expect(screen.getByRole("alert").textContent).not.toContain("{");
  });
});

describe("hooks", () => {
  it("useCooldown blocks until Retry-After passes", () => {
    vi.useFakeTimers();
    const { result } = renderHook(() => useCooldown());
    act(() => result.current.trip(apiErr(429, "rate_limited", { retryAfter: 2 })));
    expect(result.current.blocked).toBe(true);
    act(() => vi.advanceTimersByTime(2_100));
    expect(result.current.blocked).toBe(false);
    act(() => result.current.trip(apiErr(409, "conflict")));
    expect(result.current.blocked).toBe(false);
    vi.useRealTimers();
  });
  it("useIdempotencyKey keeps the key for the same values and changes it for new ones", () => {
    const { result, rerender } = renderHook((v: unknown) => useIdempotencyKey(v), { initialProps: { a: 1 } });
    const k1 = result.current.key;
    rerender({ a: 1 });
    expect(result.current.key).toBe(k1);
    rerender({ a: 2 });
    expect(result.current.key).not.toBe(k1);
    const k2 = result.current.key;
    act(() => result.current.reset());
    expect(result.current.key).not.toBe(k2);
  });
  it("useIdempotencyKeys keeps one key per thing until it is done", () => {
    const { result, rerender } = renderHook(() => useIdempotencyKeys());
    const a = result.current.keyFor("a");
    rerender();
    expect(result.current.keyFor("a")).toBe(a);
    expect(result.current.keyFor("b")).not.toBe(a);
    result.current.done("a");
    expect(result.current.keyFor("a")).not.toBe(a);
  });
  it("useCursorPages walks forward and back", () => {
    const { result } = renderHook(() => useCursorPages());
    expect(result.current.cursor).toBeUndefined();
    act(() => result.current.next("c2"));
    act(() => result.current.next("c3"));
    expect([result.current.cursor, result.current.page]).toEqual(["c3", 3]);
    act(() => result.current.prev());
    expect(result.current.cursor).toBe("c2");
    // Its Pager for a page whose next_cursor is c9.
    const pager = result.current.pager("c9", true);
    expect([pager.page, pager.hasPrev, pager.hasNext, pager.busy]).toEqual([2, true, true, true]);
    act(() => pager.onNext());
    expect(result.current.cursor).toBe("c9");
    expect(result.current.pager(undefined)).not.toHaveProperty("busy");
    expect(result.current.pager(undefined).hasNext).toBe(false);
  });
});

describe("DataTable", () => {
  it("pages with Previous/Next", async () => {
    const onNext = vi.fn();
    render(
      <DataTable
        caption="Things"
        rows={[{ id: "a" }]}
        rowKey={(r) => r.id}
        columns={[{ header: "Id", cell: (r) => r.id }]}
        pager={{ page: 1, hasPrev: false, hasNext: true, onPrev: () => {}, onNext }}
      />,
    );
    expect(screen.getByRole("button", { name: "Previous" })).toHaveProperty("disabled", true);
    await userEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(onNext).toHaveBeenCalled();
    expect(screen.getByRole("table", { name: "Things" })).toBeTruthy();
  });
});
