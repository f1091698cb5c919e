import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import type { CreateCredentialRequest, CreateServiceAccountRequest, ServiceAccount } from "../types";

// A project's service accounts with their credentials (tenant owners and
// admins only: others get 403).
export const serviceAccountKeys = {
  all: ["service-accounts"] as const,
  list: (projectId: string) => ["service-accounts", projectId, "list"] as const,
};

const path = (projectId: string, id: string) => ({ project_id: projectId, service_account_id: id });

/** The project's live accounts, each with every credential it has had (secrets never shown again). */
export function serviceAccountsQuery(projectId: string) {
  return queryOptions({
    queryKey: serviceAccountKeys.list(projectId),
    queryFn: async () =>
      (
        await unwrap(
          api.GET("/api/v1/projects/{project_id}/service-accounts", {
            params: { path: { project_id: projectId } },
          }),
        )
      ).service_accounts,
  });
}

export function createServiceAccountMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { body: CreateServiceAccountRequest; key: string }) =>
      unwrap(
        api.POST("/api/v1/projects/{project_id}/service-accounts", {
          params: { path: { project_id: projectId }, header: { "X-Idempotency-Key": v.key } },
          body: v.body,
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: serviceAccountKeys.list(projectId) }),
  };
}

/** Disables an account: its credentials are revoked with it, and the list (live accounts) drops it. */
export function disableServiceAccountMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrapEmpty(
        api.DELETE("/api/v1/projects/{project_id}/service-accounts/{service_account_id}", {
          params: { path: path(projectId, v.id), header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    onSuccess: (_: void, v: { id: string }) => {
      qc.setQueryData(serviceAccountKeys.list(projectId), (l: ServiceAccount[] | undefined) =>
        l?.filter((a) => a.id !== v.id),
      );
      void qc.invalidateQueries({ queryKey: serviceAccountKeys.list(projectId) });
    },
  };
}

export function createCredentialMutation(qc: QueryClient, projectId: string) {
  return {
    // No idempotency key: the contract takes none here (the answer is the secret, kept nowhere).
    mutationFn: (v: { id: string; body: CreateCredentialRequest }) =>
      unwrap(
        api.POST("/api/v1/projects/{project_id}/service-accounts/{service_account_id}/credentials", {
          params: { path: path(projectId, v.id) },
          body: v.body,
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: serviceAccountKeys.list(projectId) }),
  };
}

export function revokeCredentialMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { id: string; credentialId: string; key: string }) =>
      unwrapEmpty(
        api.DELETE(
          "/api/v1/projects/{project_id}/service-accounts/{service_account_id}/credentials/{credential_id}",
          {
            params: {
              path: { ...path(projectId, v.id), credential_id: v.credentialId },
              header: { "X-Idempotency-Key": v.key },
            },
          },
        ),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: serviceAccountKeys.list(projectId) }),
  };
}
