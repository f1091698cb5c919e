import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../client";
import { streamLive } from "../stream";
import type { NotificationPreferences } from "../types";

export const notificationKeys = {
  all: ["notifications"] as const,
  unread: ["notifications", "unread"] as const,
  page: (unreadOnly: boolean, cursor?: string) =>
    ["notifications", "page", unreadOnly, cursor ?? ""] as const,
  // Not under `all`: marking read and live events refresh the inbox, not these.
  preferences: ["notification-preferences"] as const,
};

// Notifications are the caller's, not a project's: no X-Project-ID.
const noProject = { "X-Project-ID": "" };

/** The unread count for the bell; the stream's events refresh it, polling only without one. */
export function unreadCountQuery() {
  return queryOptions({
    queryKey: notificationKeys.unread,
    queryFn: async () =>
      (
        await unwrap(
          api.GET("/api/v1/notifications", {
            headers: noProject,
            params: { query: { unread: true, limit: 1 } },
          }),
        )
      ).unread,
    refetchInterval: () => (streamLive() ? 300_000 : 60_000),
    retry: false,
  });
}

export function notificationsQuery(unreadOnly: boolean, cursor?: string) {
  return queryOptions({
    queryKey: notificationKeys.page(unreadOnly, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/notifications", {
          headers: noProject,
          params: { query: { unread: unreadOnly || undefined, cursor, limit: 50 } },
        }),
      ),
  });
}

export function markReadMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { ids?: string[]; all?: boolean; key: string }) =>
      unwrap(
        api.POST("/api/v1/notifications/read", {
          headers: noProject,
          params: { header: { "X-Idempotency-Key": v.key } },
          body: v.all ? { all: true } : { ids: v.ids },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: notificationKeys.all }),
  };
}

/** The caller's email choice per notification kind (a kind not named is on). */
export function notificationPreferencesQuery() {
  return queryOptions({
    queryKey: notificationKeys.preferences,
    queryFn: () => unwrap(api.GET("/api/v1/notifications/preferences", { headers: noProject })),
  });
}

export function setNotificationPreferencesMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { email: Record<string, boolean>; key: string }) =>
      unwrap(
        api.PUT("/api/v1/notifications/preferences", {
          headers: noProject,
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { email: v.email },
        }),
      ),
    onSuccess: (saved: NotificationPreferences) => qc.setQueryData(notificationKeys.preferences, saved),
  };
}
