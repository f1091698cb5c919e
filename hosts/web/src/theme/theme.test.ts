import { describe, expect, it } from "vitest";
import { renderHook, waitFor } from "@testing-library/react";
import { setTheme, useAppliedTheme } from "./theme";

describe("useAppliedTheme", () => {
  it("follows the theme the page applies, so a chart drawn in light colours is drawn again in dark", async () => {
    setTheme("light");
    const { result } = renderHook(() => useAppliedTheme());
    expect(result.current).toBe("light");
    setTheme("dark");
    await waitFor(() => expect(result.current).toBe("dark"));
    setTheme("system"); // jsdom has no dark preference
    await waitFor(() => expect(result.current).toBe("light"));
  });
});
