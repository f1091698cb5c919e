import { MutationCache, QueryClient } from "@tanstack/react-query";
import { isApiError } from "./errors";

/** The console's query client: what is retried, and what a lost answer refetches. */
export function makeQueryClient(): QueryClient {
  const client: QueryClient = new QueryClient({
    mutationCache: new MutationCache({
      // 409 idempotency_response_lost: an earlier attempt of this very request (same
      // idempotency key) saved its changes but its answer was lost. What it did is on the
      // server, so refetch what the screens show; the error says so to the user.
      onError: (e) => {
        if (isApiError(e) && e.code === "idempotency_response_lost") {
          void client.invalidateQueries();
        }
      },
    }),
    defaultOptions: {
      queries: {
        // Retry only what may pass on retry: never 4xx (a 429 shows its wait instead).
        retry: (n, e) => n < 2 && !(isApiError(e) && e.status >= 400 && e.status < 500),
        refetchOnWindowFocus: true,
        staleTime: 5_000,
      },
      mutations: { retry: false },
    },
  });
  return client;
}
