import { queryOptions } from "@tanstack/react-query";
import { api, unwrap } from "../client";

export const meKeys = { me: ["me"] as const, projects: ["projects"] as const };

export function meQuery() {
  return queryOptions({
    queryKey: meKeys.me,
    queryFn: () => unwrap(api.GET("/api/v1/users/me", { params: { header: { "X-Project-ID": "" } } })),
    staleTime: 60_000,
  });
}
