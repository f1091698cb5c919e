import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import type { APIKey, CreateAPIKeyRequest } from "../types";

// The caller's personal API keys (people signed in interactively only: a
// key or a service account gets 403 interactive_required).
export const apiKeyKeys = {
  all: ["api-keys"] as const,
  list: ["api-keys", "list"] as const,
};

/** The caller's live keys (revoked ones are gone; expired ones stay until revoked), newest first. */
export function apiKeysQuery() {
  return queryOptions({
    queryKey: apiKeyKeys.list,
    queryFn: async () => (await unwrap(api.GET("/api/v1/api-keys"))).api_keys,
  });
}

export function createAPIKeyMutation(qc: QueryClient) {
  return {
    // No idempotency key: the contract takes none here (the answer is the key, kept nowhere).
    mutationFn: (body: CreateAPIKeyRequest) => unwrap(api.POST("/api/v1/api-keys", { body })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: apiKeyKeys.list }),
  };
}

export function revokeAPIKeyMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrapEmpty(
        api.DELETE("/api/v1/api-keys/{key_id}", {
          params: { path: { key_id: v.id }, header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    // The list drops it at once, then reads again.
    onSuccess: (_: void, v: { id: string }) => {
      qc.setQueryData(apiKeyKeys.list, (l: APIKey[] | undefined) => l?.filter((k) => k.id !== v.id));
      void qc.invalidateQueries({ queryKey: apiKeyKeys.list });
    },
  };
}
