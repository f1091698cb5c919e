import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import type { AllocationState, NodeState, PaymentSessionStatus, RefundRequestStatus } from "../types";

export interface AuditFilter {
  tenant_id?: string;
  actor_id?: string;
  action?: string;
  resource_type?: string;
  resource_id?: string;
  since?: string;
  until?: string;
}

export interface UserFilter {
  email?: string;
  tenant_id?: string;
  status?: "active" | "suspended";
}

export const adminKeys = {
  nodes: (state?: NodeState) => ["admin", "nodes", state ?? "all"] as const,
  allocations: (status?: AllocationState, cursor?: string) =>
    ["admin", "allocations", status ?? "all", cursor ?? ""] as const,
  policies: ["admin", "policies"] as const,
  audit: (f: AuditFilter, cursor?: string) => ["admin", "audit", f, cursor ?? ""] as const,
  payments: (status?: PaymentSessionStatus, cursor?: string) =>
    ["admin", "payments", status ?? "all", cursor ?? ""] as const,
  users: (f: UserFilter, cursor?: string) => ["admin", "users", "list", f, cursor ?? ""] as const,
  user: (id: string) => ["admin", "users", "one", id] as const,
  tenants: (name: string, cursor?: string) => ["admin", "tenants", "list", name, cursor ?? ""] as const,
  tenant: (id: string) => ["admin", "tenants", "one", id] as const,
  tenantPolicies: (id: string) => ["admin", "tenants", "policies", id] as const,
  tenantLedger: (id: string, cursor?: string) => ["admin", "tenants", "ledger", id, cursor ?? ""] as const,
  ops: (stuck: number) => ["admin", "ops", stuck] as const,
  runbooks: ["admin", "runbooks"] as const,
  refundRequests: (status?: RefundRequestStatus, tenant?: string, cursor?: string) =>
    ["admin", "refund-requests", status ?? "all", tenant ?? "", cursor ?? ""] as const,
};

export function adminNodesQuery(state?: NodeState) {
  return queryOptions({
    queryKey: adminKeys.nodes(state),
    queryFn: async () =>
      (await unwrap(api.GET("/api/v1/admin/nodes", { params: { query: { state } } }))).nodes,
    refetchInterval: 15_000,
  });
}

export function registerNodeMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { name: string; sku_id: string; ssh_host: string; ssh_port?: number; key: string }) =>
      unwrap(
        api.POST("/api/v1/admin/nodes", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { name: v.name, sku_id: v.sku_id, ssh_host: v.ssh_host, ssh_port: v.ssh_port ?? 22 },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "nodes"] }),
  };
}

export function probeNodeMutation() {
  return {
    mutationFn: (id: string) =>
      unwrap(api.POST("/api/v1/admin/nodes/{node_id}/probe", { params: { path: { node_id: id } } })),
  };
}

export function maintenanceMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; on: boolean }) =>
      v.on
        ? unwrap(
            api.PUT("/api/v1/admin/nodes/{node_id}/maintenance", { params: { path: { node_id: v.id } } }),
          )
        : unwrap(
            api.DELETE("/api/v1/admin/nodes/{node_id}/maintenance", { params: { path: { node_id: v.id } } }),
          ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "nodes"] }),
  };
}

export function retireNodeMutation(qc: QueryClient) {
  return {
    mutationFn: (id: string) =>
      unwrapEmpty(api.DELETE("/api/v1/admin/nodes/{node_id}", { params: { path: { node_id: id } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "nodes"] }),
  };
}

export function adminAllocationsQuery(status?: AllocationState, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.allocations(status, cursor),
    queryFn: () =>
      unwrap(api.GET("/api/v1/admin/allocations", { params: { query: { status, cursor, limit: 20 } } })),
    refetchInterval: 10_000,
  });
}

export function forceReleaseMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/admin/allocations/{allocation_id}/force-release", {
          params: { path: { allocation_id: v.id }, header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "allocations"] }),
  };
}

/** Money moves change the tenant's balance and ledger: both refetch. */
export function creditMutation(qc: QueryClient) {
  return {
    mutationFn: (v: {
      tenant_id: string;
      amount_minor: number;
      currency: string;
      reason: string;
      key: string;
    }) =>
      unwrap(
        api.POST("/api/v1/admin/tenants/{tenant_id}/credits", {
          params: { path: { tenant_id: v.tenant_id }, header: { "X-Idempotency-Key": v.key } },
          body: { amount_minor: v.amount_minor, currency: v.currency, reason: v.reason },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "tenants"] }),
  };
}

export function refundMutation(qc: QueryClient) {
  return {
    mutationFn: (v: {
      tenant_id: string;
      amount_minor: number;
      reason: string;
      credit_entry_id?: string;
      key: string;
    }) =>
      unwrap(
        api.POST("/api/v1/admin/tenants/{tenant_id}/refunds", {
          params: { path: { tenant_id: v.tenant_id }, header: { "X-Idempotency-Key": v.key } },
          body: {
            amount_minor: v.amount_minor,
            reason: v.reason,
            credit_entry_id: v.credit_entry_id || undefined,
          },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "tenants"] }),
  };
}

export function policiesQuery() {
  return queryOptions({
    queryKey: adminKeys.policies,
    queryFn: async () => (await unwrap(api.GET("/api/v1/admin/policies"))).policies,
  });
}

export function setPolicyMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { key: string; value: string; idem: string }) =>
      unwrap(
        api.PUT("/api/v1/admin/policies", {
          params: { header: { "X-Idempotency-Key": v.idem } },
          body: { key: v.key, value: v.value },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: adminKeys.policies }),
  };
}

/** The filters as query parameters, empty ones left out. */
function auditParams(f: AuditFilter) {
  return {
    tenant_id: f.tenant_id?.trim() || undefined,
    actor_id: f.actor_id?.trim() || undefined,
    action: f.action?.trim() || undefined,
    resource_type: f.resource_type?.trim() || undefined,
    resource_id: f.resource_id?.trim() || undefined,
    since: f.since || undefined,
    until: f.until || undefined,
  };
}

export function auditQuery(f: AuditFilter, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.audit(f, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/audit-log", { params: { query: { ...auditParams(f), cursor, limit: 50 } } }),
      ),
  });
}

/** GET /admin/audit-log/export with the same filters: the path for download(). */
export function auditExportPath(f: AuditFilter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(auditParams(f))) if (v) q.set(k, v);
  const qs = q.toString();
  return "/api/v1/admin/audit-log/export" + (qs ? "?" + qs : "");
}

export function paymentSessionsQuery(status?: PaymentSessionStatus, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.payments(status, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/payments/sessions", { params: { query: { status, cursor, limit: 20 } } }),
      ),
  });
}

export function requestRefundMutation(qc: QueryClient) {
  return {
    mutationFn: (v: {
      tenant_id: string;
      credit_entry_id: string;
      amount_minor: number;
      reason: string;
      key: string;
    }) =>
      unwrap(
        api.POST("/api/v1/admin/tenants/{tenant_id}/refund-requests", {
          params: { path: { tenant_id: v.tenant_id }, header: { "X-Idempotency-Key": v.key } },
          body: { credit_entry_id: v.credit_entry_id, amount_minor: v.amount_minor, reason: v.reason },
        }),
      ),
    onSuccess: () =>
      void Promise.all([
        qc.invalidateQueries({ queryKey: ["admin", "refund-requests"] }),
        qc.invalidateQueries({ queryKey: ["admin", "tenants"] }),
      ]),
  };
}

export function refundRequestsQuery(status?: RefundRequestStatus, tenant?: string, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.refundRequests(status, tenant, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/refund-requests", {
          params: { query: { status, tenant_id: tenant || undefined, cursor, limit: 20 } },
        }),
      ),
    // A submitted refund settles when the provider's webhook lands.
    refetchInterval: (q) =>
      q.state.data?.refund_requests.some((r) => r.status === "requested" || r.status === "submitted")
        ? 3_000
        : 30_000,
  });
}

// Users

export function adminUsersQuery(f: UserFilter, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.users(f, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/users", {
          params: {
            query: {
              email: f.email?.trim() || undefined,
              tenant_id: f.tenant_id?.trim() || undefined,
              status: f.status,
              cursor,
              limit: 50,
            },
          },
        }),
      ),
  });
}

export interface NewUser {
  email: string;
  display_name: string;
  /** "existing": join tenant_id with role; "new": a tenant of their own. */
  where: "existing" | "new";
  tenant_id: string;
  role: "owner" | "admin" | "member";
  new_tenant_name: string;
}

export function createUserMutation(qc: QueryClient) {
  return {
    mutationFn: (v: NewUser & { key: string }) =>
      unwrap(
        api.POST("/api/v1/admin/users", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: {
            email: v.email.trim(),
            display_name: v.display_name.trim() || undefined,
            ...(v.where === "existing"
              ? { tenant_id: v.tenant_id.trim(), role: v.role }
              : { new_tenant_name: v.new_tenant_name.trim() }),
          },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "users"] }),
  };
}

export function adminUserQuery(id: string) {
  return queryOptions({
    queryKey: adminKeys.user(id),
    queryFn: () => unwrap(api.GET("/api/v1/admin/users/{user_id}", { params: { path: { user_id: id } } })),
    refetchInterval: 30_000,
  });
}

export function suspendMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; suspend: boolean; key: string }) =>
      v.suspend
        ? unwrap(
            api.POST("/api/v1/admin/users/{user_id}/suspend", {
              params: { path: { user_id: v.id }, header: { "X-Idempotency-Key": v.key } },
            }),
          )
        : unwrap(
            api.POST("/api/v1/admin/users/{user_id}/unsuspend", {
              params: { path: { user_id: v.id }, header: { "X-Idempotency-Key": v.key } },
            }),
          ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "users"] }),
  };
}

// Tenants

export function adminTenantsQuery(name: string, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.tenants(name, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/tenants", {
          params: { query: { name: name.trim() || undefined, cursor, limit: 50 } },
        }),
      ),
  });
}

export function adminTenantQuery(id: string) {
  return queryOptions({
    queryKey: adminKeys.tenant(id),
    queryFn: () =>
      unwrap(api.GET("/api/v1/admin/tenants/{tenant_id}", { params: { path: { tenant_id: id } } })),
    refetchInterval: 30_000,
  });
}

/** A tenant's ledger, newest first: where an operator finds the credit a refund names. */
export function adminTenantLedgerQuery(id: string, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.tenantLedger(id, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/tenants/{tenant_id}/ledger", {
          params: { path: { tenant_id: id }, query: { cursor, limit: 20 } },
        }),
      ),
    refetchInterval: 30_000,
  });
}

export function tenantPoliciesQuery(id: string) {
  return queryOptions({
    queryKey: adminKeys.tenantPolicies(id),
    queryFn: async () =>
      (
        await unwrap(
          api.GET("/api/v1/admin/tenants/{tenant_id}/policies", { params: { path: { tenant_id: id } } }),
        )
      ).policies,
  });
}

export function setTenantPolicyMutation(qc: QueryClient, tenantId: string) {
  return {
    mutationFn: (v: { key: string; value: string; idem: string }) =>
      unwrap(
        api.PUT("/api/v1/admin/tenants/{tenant_id}/policies", {
          params: { path: { tenant_id: tenantId }, header: { "X-Idempotency-Key": v.idem } },
          body: { key: v.key, value: v.value },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "tenants"] }),
  };
}

export function resetTenantPolicyMutation(qc: QueryClient, tenantId: string) {
  return {
    mutationFn: (v: { key: string; idem: string }) =>
      unwrap(
        api.DELETE("/api/v1/admin/tenants/{tenant_id}/policies/{key}", {
          params: { path: { tenant_id: tenantId, key: v.key }, header: { "X-Idempotency-Key": v.idem } },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "tenants"] }),
  };
}

// Ops

export function opsQuery(stuckAfterMinutes: number) {
  return queryOptions({
    queryKey: adminKeys.ops(stuckAfterMinutes),
    queryFn: () =>
      unwrap(api.GET("/api/v1/admin/ops", { params: { query: { stuck_after_minutes: stuckAfterMinutes } } })),
    refetchInterval: 15_000,
  });
}

export function runbooksQuery() {
  return queryOptions({
    queryKey: adminKeys.runbooks,
    queryFn: async () => (await unwrap(api.GET("/api/v1/admin/runbooks"))).runbooks,
    staleTime: 3_600_000,
  });
}

export function retryEventMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/admin/events/{event_id}/retry", {
          params: { path: { event_id: v.id }, header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "ops"] }),
  };
}
