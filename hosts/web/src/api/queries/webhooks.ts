import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import type {
  CreateWebhookEndpointRequest,
  UpdateWebhookEndpointRequest,
  WebhookDeliveryPage,
  WebhookDeliveryStatus,
  WebhookEndpoint,
} from "../types";

// A project's outbound webhook endpoints (project admins only: others get 403).
export const webhookKeys = {
  all: ["webhooks"] as const,
  list: (projectId: string) => ["webhooks", projectId, "list"] as const,
  endpoint: (projectId: string, id: string) => ["webhooks", projectId, "endpoint", id] as const,
  deliveries: (projectId: string, id: string) => ["webhooks", projectId, "deliveries", id] as const,
  deliveryPage: (
    projectId: string,
    id: string,
    status: WebhookDeliveryStatus | undefined,
    cursor: string | undefined,
  ) => ["webhooks", projectId, "deliveries", id, status ?? "all", cursor ?? ""] as const,
};

const path = (projectId: string, id: string) => ({ project_id: projectId, endpoint_id: id });

export function webhooksQuery(projectId: string) {
  return queryOptions({
    queryKey: webhookKeys.list(projectId),
    queryFn: async () =>
      (
        await unwrap(
          api.GET("/api/v1/projects/{project_id}/webhooks", { params: { path: { project_id: projectId } } }),
        )
      ).endpoints,
  });
}

export function webhookQuery(projectId: string, id: string) {
  return queryOptions({
    queryKey: webhookKeys.endpoint(projectId, id),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/projects/{project_id}/webhooks/{endpoint_id}", {
          params: { path: path(projectId, id) },
        }),
      ),
  });
}

/**
 * One page of an endpoint's delivery log, newest first. While a delivery on
 * the page waits for a retry (the first ones come 5 s, 30 s and 2 min apart)
 * it is refetched every 5 s; otherwise every 30 s, for new events.
 */
export function webhookDeliveriesQuery(
  projectId: string,
  id: string,
  status?: WebhookDeliveryStatus,
  cursor?: string,
) {
  return queryOptions({
    queryKey: webhookKeys.deliveryPage(projectId, id, status, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/projects/{project_id}/webhooks/{endpoint_id}/deliveries", {
          params: { path: path(projectId, id), query: { status, cursor, limit: 20 } },
        }),
      ),
    refetchInterval: (q) => {
      const page: WebhookDeliveryPage | undefined = q.state.data;
      if (!page) return false;
      return page.deliveries.some((d) => d.status === "pending") ? 5_000 : 30_000;
    },
  });
}

export function createWebhookMutation(qc: QueryClient, projectId: string) {
  return {
    // No idempotency key: the contract takes none here (the secret is made per request).
    mutationFn: (body: CreateWebhookEndpointRequest) =>
      unwrap(
        api.POST("/api/v1/projects/{project_id}/webhooks", {
          params: { path: { project_id: projectId } },
          body,
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: webhookKeys.list(projectId) }),
  };
}

/** Edits an endpoint or enables/disables it; disabling cancels its pending deliveries, so the log refetches too. */
export function updateWebhookMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { id: string; body: UpdateWebhookEndpointRequest; key: string }) =>
      unwrap(
        api.PATCH("/api/v1/projects/{project_id}/webhooks/{endpoint_id}", {
          params: { path: path(projectId, v.id), header: { "X-Idempotency-Key": v.key } },
          body: v.body,
        }),
      ),
    onSuccess: (e: WebhookEndpoint) => {
      qc.setQueryData(webhookKeys.endpoint(projectId, e.id), e);
      void qc.invalidateQueries({ queryKey: webhookKeys.list(projectId) });
      void qc.invalidateQueries({ queryKey: webhookKeys.deliveries(projectId, e.id) });
    },
  };
}

export function rotateWebhookSecretMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (id: string) =>
      unwrap(
        api.POST("/api/v1/projects/{project_id}/webhooks/{endpoint_id}/rotate-secret", {
          params: { path: path(projectId, id) },
        }),
      ),
    // Its updated_at moved.
    onSuccess: (_: unknown, id: string) =>
      void qc.invalidateQueries({ queryKey: webhookKeys.endpoint(projectId, id) }),
  };
}

export function deleteWebhookMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrapEmpty(
        api.DELETE("/api/v1/projects/{project_id}/webhooks/{endpoint_id}", {
          params: { path: path(projectId, v.id), header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    // The list drops it at once; the screen that showed it moves away (its own
    // cached reads are left to expire rather than refetched into a 404 under it).
    onSuccess: (_: void, v: { id: string }) => {
      qc.setQueryData(webhookKeys.list(projectId), (l: WebhookEndpoint[] | undefined) =>
        l?.filter((e) => e.id !== v.id),
      );
      void qc.invalidateQueries({ queryKey: webhookKeys.list(projectId) });
    },
  };
}
