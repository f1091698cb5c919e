import { describe, expect, it, vi } from "vitest";
import { ApiError } from "./errors";
import { makeQueryClient } from "./queryClient";

describe("makeQueryClient", () => {
  it("refetches what the screens show when a mutation's answer was lost", async () => {
    const qc = makeQueryClient();
    const invalidate = vi.spyOn(qc, "invalidateQueries");
    const run = (code: string) =>
      qc
        .getMutationCache()
        .build(qc, {
          mutationFn: () => Promise.reject(new ApiError({ status: 409, code })),
        })
        .execute(undefined)
        .catch(() => undefined);
    await run("idempotency_request_in_flight");
    expect(invalidate).not.toHaveBeenCalled();
    await run("idempotency_response_lost");
    expect(invalidate).toHaveBeenCalledTimes(1);
  });
});
