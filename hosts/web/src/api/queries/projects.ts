import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import { meKeys } from "./me";

export const projectKeys = {
  all: ["projects"] as const,
  members: (projectId: string) => ["projects", projectId, "members"] as const,
};

export function projectsQuery() {
  return queryOptions({
    queryKey: projectKeys.all,
    queryFn: async () => (await unwrap(api.GET("/api/v1/projects"))).projects,
  });
}

export function membersQuery(projectId: string) {
  return queryOptions({
    queryKey: projectKeys.members(projectId),
    queryFn: async () =>
      (
        await unwrap(
          api.GET("/api/v1/projects/{project_id}/members", { params: { path: { project_id: projectId } } }),
        )
      ).members,
  });
}

export function createProjectMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { name: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/projects", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { name: v.name },
        }),
      ),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: projectKeys.all });
      void qc.invalidateQueries({ queryKey: meKeys.me });
    },
  };
}

export function addMemberMutation(qc: QueryClient, projectId: string) {
  return {
    /** who: a colleague's email (what people know of each other) or their user id. */
    mutationFn: (v: { who: string; role: "admin" | "member" | "viewer"; key: string }) =>
      unwrap(
        api.POST("/api/v1/projects/{project_id}/members", {
          params: { path: { project_id: projectId }, header: { "X-Idempotency-Key": v.key } },
          body: v.who.includes("@")
            ? { email: v.who.trim(), role: v.role }
            : { user_id: v.who.trim(), role: v.role },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: projectKeys.members(projectId) }),
  };
}

export function removeMemberMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (userId: string) =>
      unwrapEmpty(
        api.DELETE("/api/v1/projects/{project_id}/members/{user_id}", {
          params: { path: { project_id: projectId, user_id: userId } },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: projectKeys.members(projectId) }),
  };
}

export function inviteMutation() {
  return {
    mutationFn: (v: { email: string; role: "admin" | "member"; key: string }) =>
      unwrap(
        api.POST("/api/v1/tenant/invitations", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { email: v.email, role: v.role },
        }),
      ),
  };
}
